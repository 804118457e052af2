"""Load run for the relays REST API on the unix build (loopback only, bounded).

    IOTLIB_BUILD=/tmp/build-roles .venv/bin/python ci/bench/bench_relays_api.py [N] [CONCURRENCY]

Starts a RelaysController from a device.json (as a user would) and, in the same run, a bare
Microdot app with one route on the same binary. Sends N requests (default 10,000) at the
given concurrency (default 20) to each: the API mix is 80 % GET /gpio/relay1 and 20 %
POST /gpio/relay1 toggles, each with a PyJWT bearer token (so auth, RBAC and both rate
limits run on every request). Exits non-zero on any error or non-200 reply, or when the
device's heap (free bytes right after a collection, from /metrics) fell by more than
HEAP_SLACK between the first and the last quarter of the run.
"""
import asyncio
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import jwt

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("IOTLIB_BUILD") or ROOT / "build")
BINARY = BUILD / "unix" / "micropython"
API_KEY = "bench-tenant-api-key-0123456789abcdef"
HEAP_SLACK = 16 * 1024  # bytes: fragmentation noise, not a leak

BARE_APP = """
from microdot import Microdot
app = Microdot()

@app.route("/gpio/relay1")
async def relay(request):
    return {"relay": "relay1", "state": "LOW"}

app.run(host="127.0.0.1", port=%d)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url, proc):
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("device exited early")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    sys.exit("device did not come up: " + url)


def heap(base):
    for line in httpx.get(base + "/metrics").text.splitlines():
        if line.startswith("iot_heap_free_bytes_after_gc") or \
                line.startswith("iot_heap_free_after_gc_bytes"):
            return int(float(line.split()[-1]))
    raise SystemExit("no heap gauge on /metrics")


async def load(base, n, concurrency, headers, api, samples):
    errors = []
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)

    async def worker(client):
        for i in counter:
            try:
                if api and i % 5 == 4:
                    state = "HIGH" if (i // 5) % 2 else "LOW"
                    r = await client.post("/gpio/relay1", json={"state": state})
                else:
                    r = await client.get("/gpio/relay1")
                if r.status_code != 200:
                    errors.append("%d %s" % (r.status_code, r.text[:80]))
            except httpx.HTTPError as e:
                errors.append(repr(e))
            if api and i and i % (n // 4) == 0:
                samples.append(heap(base))

    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=10) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return n / elapsed, errors


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    if not BINARY.exists():
        sys.exit("%s missing: firmware/build.sh unix" % BINARY)
    now = int(time.time())
    token = jwt.encode({"sub": "bench", "tenant": "bench", "namespace": "load", "role": "admin",
                        "iss": "fleet", "aud": "iotlib", "iat": now, "exp": now + 3600},
                       API_KEY, algorithm="HS256")
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        api_port, bare_port = free_port(), free_port()
        pathlib.Path(tmp, "device.json").write_text(json.dumps({
            "device_id": "bench-relays", "device_key": "dk", "api_key": API_KEY,
            "tenant": "bench", "namespace": "load", "role": "relays", "host": "127.0.0.1",
            "port": api_port, "relay_pins": {"relay1": 2, "relay2": 3},
            "rate_limit": {"per_token_rps": 100000, "per_address_rps": 100000,
                           "burst": 100000}}))
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        try:
            api = subprocess.Popen([str(BINARY), "-c", "import iot_boot\niot_boot.run()"],
                                   cwd=tmp, env=env, stdout=subprocess.DEVNULL)
            procs.append(api)
            bare = subprocess.Popen([str(BINARY), "-c", BARE_APP % bare_port], cwd=tmp,
                                    env=env, stdout=subprocess.DEVNULL)
            procs.append(bare)
            api_base = "http://127.0.0.1:%d" % api_port
            bare_base = "http://127.0.0.1:%d" % bare_port
            wait_up(api_base + "/health/livez", api)
            wait_up(bare_base + "/gpio/relay1", bare)

            samples = [heap(api_base)]
            api_rps, api_errors = asyncio.run(
                load(api_base, n, concurrency, {"Authorization": "Bearer " + token}, True,
                     samples))
            samples.append(heap(api_base))
            bare_rps, bare_errors = asyncio.run(load(bare_base, n, concurrency, {}, False, []))
        finally:
            for p in procs:
                p.terminate()
                p.wait(5)

    print("relays API : %6d requests, concurrency %d, %7.0f req/s, %d errors"
          % (n, concurrency, api_rps, len(api_errors)))
    print("bare route : %6d requests, concurrency %d, %7.0f req/s, %d errors"
          % (n, concurrency, bare_rps, len(bare_errors)))
    print("API / bare : %.2f" % (api_rps / bare_rps))
    print("free heap after gc (bytes), start .. end: %s" % " ".join(str(s) for s in samples))
    failed = False
    if api_errors or bare_errors:
        print("FAIL: errors, first ones:", (api_errors + bare_errors)[:5])
        failed = True
    if samples[-1] < samples[1] - HEAP_SLACK:
        print("FAIL: heap fell by %d bytes during the run" % (samples[1] - samples[-1]))
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
