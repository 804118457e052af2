# Run by tests/library/test_http_client.py; ARGS: the raw server's port.
import asyncio, json, os, time
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from iotlib.http_client import HttpClient, HttpError
from iotlib.auth_manager import AuthManager
auth = AuthManager("k")
auth.set_device_token("dev-tok", auth.clock.time() + 60)
http = HttpClient(auth=auth, timeout_ms=400, max_body=2048)
base = "http://127.0.0.1:%d" % ARGS["port"]
async def attempt(path):
    try:
        r = await http.get(base + path)
        return "%d %s" % (r.status, r.body.decode())
    except HttpError as e:
        return "HttpError: %s" % e
async def main():
    r = await http.post(base + "/echo", json={"a": [1, 2]}, headers={"X-Req": "1"})
    print(r.status, r.headers["content-type"], r.json())
    print(await attempt("/chunked"))
    print(await attempt("/big"))
    print(await attempt("/bigchunked"))
    r = await http.get(base + "/eof")
    print(r.status, len(r.body), r.headers["x-kind"])
    t = time.ticks_ms()
    print(await attempt("/slow"), time.ticks_diff(time.ticks_ms(), t) < 1500)
    print(await attempt("/after-timeout"))
asyncio.run(main())
