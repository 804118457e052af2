# Runs cfg["steps"] against `mgr` and `metrics`, one RESULT line each.
async def main():
    for step in cfg["steps"]:
        if step == "check":
            r = await mgr.check()
        elif step == "commit":
            r = mgr.commit()
        elif step == "rollback":
            r = mgr.rollback()
        elif step == "trial":
            await mgr.run_trial(tick_s=0.05)
            r = {"state": mgr.state}
        elif step == "state":
            r = (await mgr.admin("state"))[1]
        elif step == "metrics":
            r = {"text": metrics.render()}
        else:
            r = await mgr.offer(step)
        print("RESULT", json.dumps(r))
asyncio.run(main())
