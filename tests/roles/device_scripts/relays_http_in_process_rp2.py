# Run by tests/roles/test_relays_rp2.py.
token = auth.issue("op", "operator")

async def request(method, path, body=b""):
    raw = b"%s %s HTTP/1.1\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s" % (
        method, path, token, len(body), body)
    w = Writer()
    await ctl.server.app.handle_request(Reader(raw), w)
    return w.data.split(b"\r\n", 1)[0], w.data.rsplit(b"\r\n", 1)[1]

async def main():
    await ctl.start()  # safe states, max on-time guard task, config/managers when given
    print("post", await request(b"POST", b"/gpio/relay2", b'{"state": "HIGH"}'), pins())
    print("get", await request(b"GET", b"/gpio"))
    print("conflict", (await request(b"POST", b"/gpio/relay1", b'{"state": "HIGH"}'))[0])
    # the longest path allowed is matched without overflowing the board's stack; longer: 414
    print("paths", (await request(b"GET", b"/gpio/" + b"r" * 58))[0],
          (await request(b"GET", b"/gpio/" + b"r" * 300))[0])
    for i in range(50):
        await request(b"GET", b"/gpio/relay1")
    gc.collect()
    print("free_started", gc.mem_free())
    for i in range(50):
        await request(b"GET", b"/gpio/relay1")
    gc.collect()
    print("free_after_100", gc.mem_free())
    ctl.stop_guard()

asyncio.run(main())
