# One phase of tests/roles/test_sensors_rp2.py after its setup: fresh samples, GET /sensors;
# ARGS: first (the first phase starts the controller and prints the free heap).
async def phase(first):
    if first:
        await ctl.start()  # sampling tasks (and the stream keepalive)
    else:
        ctl.start_sampling()
    n = ctl.samples
    while ctl.samples < n + 6:  # a few fresh samples of each field
        await asyncio.sleep_ms(20)
    status, body = await get(b"/sensors")
    print("status", status)
    print("body", body.decode())
    if first:
        gc.collect()
        print("free_started", gc.mem_free())
    ctl.stop_sampling()
asyncio.run(phase(ARGS["first"]))
