"""Load run for the relays REST API on the unix build (loopback only, bounded).

    IOTLIB_BUILD=/tmp/build-roles .venv/bin/python ci/bench/bench_relays_api.py [SECONDS] [CONNECTIONS] [ROUNDS]

The load generator is wrk (Debian package `wrk`, installed by firmware/install_toolchain.sh),
one thread pinned to CPU 0; the servers run on CPU 1 (taskset). The same wrk settings for
every server (default 4 connections: the device's default max_connections and under
Microdot's listen backlog of 5), a 2 s warm-up each, then ROUNDS (3) rounds of SECONDS (5 s)
per server in turn; each figure is the server's best round, so a burst of load from
elsewhere on the machine costs one round, not the comparison. Servers:

  - the relays API: a RelaysController started from a device.json (as a user would) on the
    unix binary, GET /gpio/relay1 with a PyJWT bearer token, so JWT verification, RBAC,
    both rate limits (raised in the bench's device.json so they do not refuse the bench,
    but on) and metrics run on every request; then the same with a 80 % GET / 20 % POST
    mix (POSTs switch the relay and write the audit trail);
  - a bare Microdot app with one route on the same binary serving the same JSON;
  - a bare iotlib HttpServer (the API's own connection layer) with the same route, so the
    cost of auth, RBAC, limits and metrics shows apart from the connection layer's;
  - the generator's own ceiling: a small CPython server answering with the bare route's
    exact bytes and closing the connection after each answer, as both MicroPython servers
    do (HTTP/1.0 from Microdot, HTTP/1.1 + Connection: close from the API), so wrk
    reconnects per request against all of them alike.

Prints req/s side by side, the ratio bare / API (the API's overhead; target <= 1.3x), the
ceiling next to them, and per run the server's CPU (share of the run and per request), wrk's
CPU and the CPU other processes took (a skewed run shows there). Exits non-zero on any socket
error or non-2xx answer (wrk's counts), or when the device's heap (free bytes right after a
collection, from /metrics) fell by more than HEAP_SLACK between the end of the warm-up and
the end of the rounds. Not a timed test: the figures are for reading.
"""
import json
import os
import resource
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

# The project's own connection layer (iotlib.http_server, what the API runs on) with the
# same route and nothing else: no auth, RBAC, rate limits or metrics.
BARE_HTTPSERVER_APP = """
import asyncio
from iotlib.http_server import HttpServer
app = HttpServer()

@app.route("/gpio/relay1")
async def relay(request):
    return {"relay": "relay1", "state": "LOW"}

asyncio.run(app.start_server(host="127.0.0.1", port=%d))
"""

# The generator's ceiling: answers every request head with `reply` and closes, like the
# MicroPython servers (no keep-alive): one CPython process, a blocking accept loop (a few
# system calls per connection, no event loop).
CEILING_SERVER = r"""
import socket, sys

reply = bytes.fromhex(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
while True:
    c, _ = s.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        data = c.recv(4096)
        if not data:
            break
        head += data
    c.sendall(reply)
    c.close()
"""

# wrk script: the bearer header, an optional share of POSTs, a JSON summary at the end.
WRK_SCRIPT = r"""
local token = os.getenv("BENCH_TOKEN")
local post_every = tonumber(os.getenv("BENCH_POST_EVERY") or "0")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local n = 0
local get, posts
init = function(args)  -- after wrk.init has set the Host header
  get = wrk.format("GET", "/gpio/relay1")
  local headers = {}  -- wrk.format takes these instead of wrk.headers: copy them
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
  posts = {wrk.format("POST", "/gpio/relay1", headers, '{"state": "HIGH"}'),
           wrk.format("POST", "/gpio/relay1", headers, '{"state": "LOW"}')}
end
request = function()
  n = n + 1
  if post_every > 0 and n % post_every == 0 then
    return posts[(n / post_every) % 2 + 1]
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


def cpu_s(pid):
    """CPU seconds (user + system) the process has used so far."""
    fields = pathlib.Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s():
    """CPU seconds every CPU of the machine has spent in processes so far (user, nice,
    system: not idle, and not interrupt time, which no process is charged for either)."""
    v = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (v[0] + v[1] + v[2]) / os.sysconf("SC_CLK_TCK")


def wrk(port, seconds, connections, script, token=None, post_every=0, server=None):
    """wrk's summary (req/s, errors, latency) and, with `server`: the share of the run's wall
    time the server spent on a CPU (1.0: the server is the bottleneck), its CPU per request,
    and the CPU that neither the server nor wrk used (other load, which skews the run)."""
    env = dict(os.environ, BENCH_TOKEN=token or "", BENCH_POST_EVERY=str(post_every))
    cmd = ["taskset", "-c", GEN_CPU, "wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
           "--timeout", "5s", "-s", script, "http://127.0.0.1:%d/gpio/relay1" % port]
    cpu0 = cpu_s(server.pid) if server else 0.0
    gen0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = machine_busy_s()
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    busy = machine_busy_s() - busy0
    gen1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_s(server.pid) - cpu0 if server else float("nan")
    gen = (gen1.ru_utime + gen1.ru_stime) - (gen0.ru_utime + gen0.ru_stime)
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            r = json.loads(line[9:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["errors"] = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
            r["busy"] = cpu / wall
            r["cpu_us"] = 1e6 * cpu / r["requests"]  # server CPU per request
            r["gen"] = gen / wall
            r["other"] = max(0.0, busy - cpu - gen) / wall
            return r
    sys.exit("wrk printed no summary:\n" + out)


def pinned(cmd, **kw):
    return subprocess.Popen(["taskset", "-c", SERVER_CPU] + cmd, **kw)


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    if not BINARY.exists():
        sys.exit("%s missing: firmware/build.sh unix" % BINARY)
    if shutil.which("wrk") is None:
        sys.exit("wrk missing: firmware/install_toolchain.sh (Debian package wrk)")
    now = int(time.time())
    token = jwt.encode({"sub": "bench", "tenant": "bench", "namespace": "load", "role": "admin",
                        "iss": "fleet", "aud": "iotlib", "iat": now, "exp": now + 3600},
                       API_KEY, algorithm="HS256")
    procs = []
    runs = {}  # name -> every round's result
    with tempfile.TemporaryDirectory() as tmp:
        script = str(pathlib.Path(tmp, "bench.lua"))
        pathlib.Path(script).write_text(WRK_SCRIPT)
        api_port, bare_port, layer_port, ceiling_port = (free_port(), free_port(), free_port(),
                                                         free_port())
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
        # the simulated RTC follows the host clock and is trusted (as in the tests): an
        # untrusted clock answers every token with 503 clock_not_synced
        env["IOTLIB_SIM_RTC"] = "host"
        try:
            api = pinned([str(BINARY), "-c", "import iot_boot\niot_boot.run()"],
                         cwd=device_dir, env=env, stdout=subprocess.DEVNULL)
            procs.append(api)
            bare = pinned([str(BINARY), "-c", BARE_APP % bare_port], cwd=tmp, env=env,
                          stdout=subprocess.DEVNULL)
            procs.append(bare)
            layer = pinned([str(BINARY), "-c", BARE_HTTPSERVER_APP % layer_port], cwd=tmp,
                           env=env, stdout=subprocess.DEVNULL)
            procs.append(layer)
            wait_up(api_port, "/health/livez", api)
            _, bare_reply, bare_body = wait_up(bare_port, "/gpio/relay1", bare)
            _, _, layer_body = wait_up(layer_port, "/gpio/relay1", layer)
            status, api_reply, api_body = http_get(api_port, "/gpio/relay1",
                                                   {"Authorization": "Bearer " + token})
            want = json.loads(bare_body)
            if status != 200 or json.loads(api_body) != want or json.loads(layer_body) != want:
                sys.exit("the servers answer differently: %r / %r" % (api_reply, bare_reply))
            ceiling = pinned([sys.executable, "-c", CEILING_SERVER, str(ceiling_port),
                              bare_reply.hex()])
            procs.append(ceiling)
            wait_up(ceiling_port, "/gpio/relay1", ceiling)

            # name: (port, process, token, share of POSTs)
            plan = {"api": (api_port, api, token, 0), "mix": (api_port, api, token, 5),
                    "bare": (bare_port, bare, None, 0), "layer": (layer_port, layer, None, 0),
                    "ceiling": (ceiling_port, ceiling, None, 0)}
            for name in ("api", "bare", "layer", "ceiling"):  # warm-up
                port, _, tok, _ = plan[name]
                wrk(port, WARMUP_S, connections, script, tok)
            heap_start = heap(api_port)
            # rounds of every server in turn: a burst of load from elsewhere on the machine
            # hits one round, and each figure below is the server's best round
            for _ in range(rounds):
                for name, (port, proc, tok, posts) in plan.items():
                    runs.setdefault(name, []).append(
                        wrk(port, seconds, connections, script, tok, posts, server=proc))
            heap_end = heap(api_port)
        finally:
            for p in procs:
                p.terminate()
                p.wait(5)

    best = {name: max(rs, key=lambda r: r["rps"]) for name, rs in runs.items()}
    api, bare, layer, ceiling, mix = (best[n] for n in ("api", "bare", "layer", "ceiling", "mix"))
    print("REST API on the unix build: wrk 1 thread (CPU %s), %d connections, %d rounds of %d s"
          " per server after a %d s warm-up, best round shown; each server on CPU %s; a new"
          " connection per request (every server closes after its answer)"
          % (GEN_CPU, connections, rounds, seconds, WARMUP_S, SERVER_CPU))
    rows = (("relays API, GET /gpio/relay1", "api"),
            ("bare Microdot route, same JSON", "bare"),
            ("bare iotlib HttpServer route", "layer"),
            ("generator ceiling (CPython server)", "ceiling"),
            ("relays API, 80% GET / 20% POST", "mix"))
    for label, name in rows:
        r = best[name]
        print("%-35s %6.0f req/s (rounds: %s)  server CPU %3.0f%%, %4.0f us/request  wrk CPU %3.0f%%"
              "  other load %3.0f%%  p50 %4.2f ms  p99 %5.2f ms  %d non-2xx, %d socket errors"
              % (label, r["rps"], " ".join("%.0f" % x["rps"] for x in runs[name]),
                 100 * r["busy"], r["cpu_us"], 100 * r["gen"], 100 * r["other"],
                 r["p50_us"] / 1000, r["p99_us"] / 1000, sum(x["non2xx"] for x in runs[name]),
                 sum(x["errors"] - x["non2xx"] for x in runs[name])))
    overhead = bare["rps"] / api["rps"]
    print("API overhead vs bare Microdot (bare / API req/s): %.2fx (target <= 1.30x: %s);"
          " in server CPU per request (API / bare): %.2fx"
          % (overhead, "met" if overhead <= 1.3 else "MISSED", api["cpu_us"] / bare["cpu_us"]))
    print("auth + RBAC + rate limits + metrics on the same connection layer (bare HttpServer /"
          " API): %.2fx in req/s, %.2fx in server CPU per request"
          % (layer["rps"] / api["rps"], api["cpu_us"] / layer["cpu_us"]))
    print("generator ceiling: %.2fx the bare Microdot route, %.2fx the API, %.2fx the bare"
          " HttpServer (%s)"
          % (ceiling["rps"] / bare["rps"], ceiling["rps"] / api["rps"],
             ceiling["rps"] / layer["rps"],
             "the generator is not the bottleneck"
             if ceiling["rps"] > 1.5 * max(bare["rps"], api["rps"], layer["rps"])
             else "WARNING: the generator may limit the figures"))
    if max(r["other"] for r in best.values()) > 0.1:
        print("WARNING: other processes used more than 10% of a CPU during a best round:"
              " req/s figures are skewed (CPU per request less so)")
    print("API free heap after gc (bytes): after warm-up %d, after every round %d"
          % (heap_start, heap_end))
    failed = False
    errors = [(label, sum(x["errors"] for x in runs[name])) for label, name in rows]
    errors = [e for e in errors if e[1]]
    if errors:
        print("FAIL: errors or non-2xx answers: %s" % errors)
        failed = True
    if heap_end < heap_start - HEAP_SLACK:
        print("FAIL: heap fell by %d bytes during the run" % (heap_start - heap_end))
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
