"""Load run for the relays REST API on the unix build (loopback only, bounded).

    IOTLIB_BUILD=/tmp/build-roles .venv/bin/python ci/bench/bench_relays_api.py [SECONDS] [CONNECTIONS]

The load generator is wrk (Debian package `wrk`, installed by firmware/install_toolchain.sh),
one thread pinned to CPU 0; the server under test runs alone on CPU 1 (taskset). Three
servers, the same wrk settings (default 10 s after a 2 s warm-up, 4 connections: the
device's default max_connections and under Microdot's listen backlog of 5):

  - the relays API: a RelaysController started from a device.json (as a user would) on the
    unix binary, GET /gpio/relay1 with a PyJWT bearer token, so JWT verification, RBAC,
    both rate limits (raised in the bench's device.json so they do not refuse the bench,
    but on) and metrics run on every request; then the same with a 80 % GET / 20 % POST
    mix (POSTs switch the relay and write the audit trail);
  - a bare Microdot app with one route on the same binary serving the same JSON;
  - the generator's own ceiling: a small CPython asyncio server answering with the bare
    route's exact bytes and closing the connection after each answer, as both MicroPython
    servers do (HTTP/1.0 from Microdot, HTTP/1.1 + Connection: close from the API), so
    wrk reconnects per request against all three alike.

Prints req/s side by side, the ratio bare / API (the API's overhead; target <= 1.3x) and
the ceiling next to both. Exits non-zero on any socket error or non-2xx answer (wrk's
counts), or when the device's heap (free bytes right after a collection, from /metrics)
fell by more than HEAP_SLACK between the end of the warm-up and the end of the run.
Not a timed test: the figures are for reading.
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import jwt

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("IOTLIB_BUILD") or ROOT / "build")
BINARY = BUILD / "unix" / "micropython"
API_KEY = "bench-tenant-api-key-0123456789abcdef"
HEAP_SLACK = 16 * 1024  # bytes: fragmentation noise, not a leak
WARMUP_S = 2
GEN_CPU, SERVER_CPU = "0", "1"

BARE_APP = """
from microdot import Microdot
app = Microdot()

@app.route("/gpio/relay1")
async def relay(request):
    return {"relay": "relay1", "state": "LOW"}

app.run(host="127.0.0.1", port=%d)
"""

# The generator's ceiling: answers every request head with `reply` and closes, like the
# MicroPython servers (no keep-alive), from one CPython process.
CEILING_SERVER = r"""
import asyncio, sys

reply = bytes.fromhex(sys.argv[2])

class Once(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.t.write(reply)
            self.t.close()

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Once, "127.0.0.1", int(sys.argv[1]), backlog=128)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""

# wrk script: the bearer header, an optional share of POSTs, a JSON summary at the end.
WRK_SCRIPT = r"""
local token = os.getenv("BENCH_TOKEN")
local post_every = tonumber(os.getenv("BENCH_POST_EVERY") or "0")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local n = 0
local get
init = function(args)  -- after wrk.init has set the Host header
  get = wrk.format("GET", "/gpio/relay1")
end
request = function()
  n = n + 1
  if post_every > 0 and n % post_every == 0 then
    local state = ((n / post_every) % 2 == 0) and "HIGH" or "LOW"
    return wrk.format("POST", "/gpio/relay1", {["Content-Type"] = "application/json"},
                      '{"state": "' .. state .. '"}')
  end
  return get
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, headers=None):
    """(status, head bytes, body bytes) of one request on its own connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, extra)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), data, body


def wait_up(port, path, proc):
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("server exited early: port %d" % port)
        try:
            return http_get(port, path)
        except (OSError, IndexError, ValueError):
            time.sleep(0.05)
    sys.exit("server did not come up: port %d %s" % (port, path))


def heap(port):
    for line in http_get(port, "/metrics")[2].decode().splitlines():
        if line.startswith("iot_heap_free_after_gc_bytes"):
            return int(float(line.split()[-1]))
    raise SystemExit("no heap gauge on /metrics")


def wrk(port, seconds, connections, script, token=None, post_every=0):
    env = dict(os.environ, BENCH_TOKEN=token or "", BENCH_POST_EVERY=str(post_every))
    cmd = ["taskset", "-c", GEN_CPU, "wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
           "--timeout", "5s", "-s", script, "http://127.0.0.1:%d/gpio/relay1" % port]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            r = json.loads(line[9:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["errors"] = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
            return r
    sys.exit("wrk printed no summary:\n" + out)


def pinned(cmd, **kw):
    return subprocess.Popen(["taskset", "-c", SERVER_CPU] + cmd, **kw)


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    if not BINARY.exists():
        sys.exit("%s missing: firmware/build.sh unix" % BINARY)
    if shutil.which("wrk") is None:
        sys.exit("wrk missing: firmware/install_toolchain.sh (Debian package wrk)")
    now = int(time.time())
    token = jwt.encode({"sub": "bench", "tenant": "bench", "namespace": "load", "role": "admin",
                        "iss": "fleet", "aud": "iotlib", "iat": now, "exp": now + 3600},
                       API_KEY, algorithm="HS256")
    procs = []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = str(pathlib.Path(tmp, "bench.lua"))
        pathlib.Path(script).write_text(WRK_SCRIPT)
        api_port, bare_port, ceiling_port = free_port(), free_port(), free_port()
        device_dir = pathlib.Path(tmp, "device")
        device_dir.mkdir()
        (device_dir / "device.json").write_text(json.dumps({
            "device_id": "bench-relays", "device_key": "dk", "api_key": API_KEY,
            "tenant": "bench", "namespace": "load", "role": "relays", "host": "127.0.0.1",
            "port": api_port, "relay_pins": {"relay1": 2, "relay2": 3},
            # on, but far above what one loopback client can send
            "rate_limit": {"per_token_rps": 100000, "per_address_rps": 100000,
                           "burst": 100000}}))
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        try:
            api = pinned([str(BINARY), "-c", "import iot_boot\niot_boot.run()"],
                         cwd=device_dir, env=env, stdout=subprocess.DEVNULL)
            procs.append(api)
            bare = pinned([str(BINARY), "-c", BARE_APP % bare_port], cwd=tmp, env=env,
                          stdout=subprocess.DEVNULL)
            procs.append(bare)
            wait_up(api_port, "/health/livez", api)
            _, bare_reply, bare_body = wait_up(bare_port, "/gpio/relay1", bare)
            status, api_reply, api_body = http_get(api_port, "/gpio/relay1",
                                                   {"Authorization": "Bearer " + token})
            if status != 200 or json.loads(api_body) != json.loads(bare_body):
                sys.exit("the API and the bare route differ: %r / %r" % (api_reply, bare_reply))
            ceiling = pinned([sys.executable, "-c", CEILING_SERVER, str(ceiling_port),
                              bare_reply.hex()])
            procs.append(ceiling)
            wait_up(ceiling_port, "/gpio/relay1", ceiling)

            wrk(api_port, WARMUP_S, connections, script, token)
            heap_start = heap(api_port)
            results["api"] = wrk(api_port, seconds, connections, script, token)
            heap_end = heap(api_port)
            results["mix"] = wrk(api_port, seconds, connections, script, token, post_every=5)
            heap_mix = heap(api_port)
            wrk(bare_port, WARMUP_S, connections, script)
            results["bare"] = wrk(bare_port, seconds, connections, script)
            wrk(ceiling_port, WARMUP_S, connections, script)
            results["ceiling"] = wrk(ceiling_port, seconds, connections, script)
        finally:
            for p in procs:
                p.terminate()
                p.wait(5)

    api, bare, ceiling, mix = results["api"], results["bare"], results["ceiling"], results["mix"]
    print("REST API on the unix build: wrk 1 thread (CPU %s), %d connections, %d s per run after"
          " a %d s warm-up; each server alone on CPU %s; a new connection per request"
          " (every server closes after its answer)" % (GEN_CPU, connections, seconds, WARMUP_S,
                                                       SERVER_CPU))
    rows = (("relays API, GET /gpio/relay1", api),
            ("bare Microdot route, same JSON", bare),
            ("generator ceiling (CPython server)", ceiling),
            ("relays API, 80% GET / 20% POST", mix))
    for label, r in rows:
        print("%-36s %8.0f req/s   p50 %5.2f ms  p99 %6.2f ms   %7d requests, %d non-2xx,"
              " %d socket errors" % (label, r["rps"], r["p50_us"] / 1000, r["p99_us"] / 1000,
                                     r["requests"], r["non2xx"], r["errors"] - r["non2xx"]))
    overhead = bare["rps"] / api["rps"]
    print("API overhead (bare / API req/s): %.2fx (target <= 1.30x: %s)"
          % (overhead, "met" if overhead <= 1.3 else "MISSED"))
    print("generator ceiling / bare: %.2fx, / API: %.2fx (%s)"
          % (ceiling["rps"] / bare["rps"], ceiling["rps"] / api["rps"],
             "the generator is not the bottleneck" if ceiling["rps"] > 1.5 * bare["rps"]
             else "WARNING: the generator may limit the figures"))
    print("API free heap after gc (bytes): after warm-up %d, after GET run %d, after mix %d"
          % (heap_start, heap_end, heap_mix))
    failed = False
    errors = [(label, r["errors"]) for label, r in rows if r["errors"]]
    if errors:
        print("FAIL: errors or non-2xx answers: %s" % errors)
        failed = True
    if min(heap_end, heap_mix) < heap_start - HEAP_SLACK:
        print("FAIL: heap fell by %d bytes during the run" % (heap_start - min(heap_end, heap_mix)))
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
