# Run by tests/library/test_http_client.py; ARGS: the server's port, its certificate (DER, hex).
import asyncio, binascii, json, os
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from iotlib.http_client import HttpClient, HttpError
from iotlib.auth_manager import AuthManager
auth = AuthManager("k")
auth.set_device_token("tls-tok", auth.clock.time() + 60)
url = "https://localhost:%d/x" % ARGS["port"]
der = binascii.unhexlify(ARGS["der"])
async def main():
    r = await HttpClient(auth=auth, timeout_ms=5000, tls_insecure=True).get(url)
    print(r.status, r.json())
    try:
        await HttpClient(timeout_ms=5000).get(url)
        print("NOT REFUSED")
    except OSError as e:
        print("no CA:", e)
    r = await HttpClient(timeout_ms=5000, cadata=der).get(url)
    print("verified", r.status)
    try:
        await HttpClient(timeout_ms=5000, cadata=der).get(url.replace("localhost", "127.0.0.1"))
        print("NOT REFUSED")
    except (OSError, ValueError) as e:
        print("refused")
asyncio.run(main())
