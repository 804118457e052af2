# StateManager reporting and applying desired state (after the prelude); run by tests/library/test_state_manager.py.
from iotlib.registration import Registration
reg = Registration(SD, auth, DEVICE, role="relays")
relays = {"relay1": 0}
async def main():
    while True:
        try:
            await reg.register()
            break
        except OSError:
            await asyncio.sleep_ms(200)
    state = StateManager(reg.service("state"), auth, DEVICE, store=store, debounce_ms=50,
                         retry_ms=200, poll_ms=300, log=log)
    def apply(desired):                      # the role's handler: drive the relays, report back
        print("DESIRED", sorted(desired.items()))
        for k, v in desired.items():
            if k.startswith("relay"):
                relays[k] = v
        state.report(relays)
    state.on_desired(apply)
    state.report(relays)
    await state.start()
    was_online = None
    while True:
        if state.online != was_online:
            was_online = state.online
            print("ONLINE" if was_online else "OFFLINE")
            if not was_online and state.pushes:
                # changes made while the service is away: only the newest values matter
                state.report(relay2=1)
                state.report(relay2=0, relay3=5)
                print("QUEUED", state.dirty)
        await asyncio.sleep_ms(50)
asyncio.run(main())
