"""Is the device still responsive under attack? (issue 12's load check; printed, not asserted)

    .venv/bin/python ci/bench/bench_hardening.py [PROBES]

Starts a relays device from a device.json on the unix build with the board-sized connection
limits (4 slots, the defaults), then measures /health/livez latency (a new connection per
probe, as a liveness prober does) twice in the same run:
  quiet    - nothing else talking to the device;
  attacked - at the same time: 200 idle sockets held open (re-opened whenever the device
             drops one), 20 slowloris clients (one header byte every 0.5 s, re-opened when
             dropped) and a bad-token flood (GET /gpio with a garbage bearer token, back to
             back, from 127.0.5.1).
Prints p50/p99/max for both and their ratio, what the attackers achieved (connections
opened, flood requests answered per second, so the generator is shown not to be the
bottleneck) and the device's own counters (evicted, timeouts, refused).
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("IOTLIB_BUILD") or ROOT / "build")
BINARY = BUILD / "unix" / "micropython"
API_KEY = "bench-tenant-api-key-0123456789abcdef"
IDLE, SLOWLORIS = 200, 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_device(tmp, port):
    settings = {"device_id": "bench-hard", "device_key": "dk", "api_key": API_KEY,
                "tenant": "acme", "namespace": "p", "role": "relays", "host": "127.0.0.1",
                "port": port, "relays": {"relay1": {"pin": 2}},
                "rate_limit": {"per_token_rps": 50, "per_address_rps": 50, "burst": 50}}
    (tmp / "device.json").write_text(json.dumps(settings))
    env = dict(os.environ)
    env.pop("MICROPYPATH", None)
    proc = subprocess.Popen([str(BINARY), "-c", "import iot_boot\niot_boot.run()"], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if get(port, b"/health/livez")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("device did not come up")


def get(port, path, headers=b"", source="127.0.0.1", timeout=5):
    """(status, seconds) of one GET on a fresh connection."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0)) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: d\r\n" + headers + b"\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    parts = data.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 else 0), time.perf_counter() - t0


def probe(port, n):
    times = []
    failures = 0
    for _ in range(n):
        try:
            status, dt = get(port, b"/health/livez")
            times.append(dt)
            failures += status != 200
        except OSError:
            failures += 1
        time.sleep(0.01)
    times.sort()
    return times, failures


def pct(times, p):
    return times[min(len(times) - 1, int(len(times) * p))] * 1000 if times else float("nan")


class Attack:
    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.opened = 0
        self.flood_answers = 0
        self.threads = [threading.Thread(target=self._idle, daemon=True),
                        threading.Thread(target=self._slowloris, daemon=True),
                        threading.Thread(target=self._flood, daemon=True)]

    def _connect(self, source):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5,
                                     source_address=(source, 0))
        s.setblocking(False)
        self.opened += 1
        return s

    def _dead(self, s):
        try:
            return s.recv(4096) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _hold(self, count, source, every_s, payload):
        socks = []
        while not self.stop.is_set():
            alive = []
            for s in socks:
                if self._dead(s):
                    s.close()
                else:
                    alive.append(s)
            socks = alive
            while len(socks) < count and not self.stop.is_set():
                try:
                    s = self._connect(source)
                    if payload:
                        s.send(b"GET /gpio HTTP/1.1\r\n")
                    socks.append(s)
                except OSError:
                    break
            if payload:
                for s in socks:
                    try:
                        s.send(payload)
                    except OSError:
                        pass
            self.stop.wait(every_s)
        for s in socks:
            s.close()

    def _idle(self):
        self._hold(IDLE, "127.0.6.1", 0.2, None)

    def _slowloris(self):
        self._hold(SLOWLORIS, "127.0.7.1", 0.5, b"X")

    def _flood(self):
        bad = b"Authorization: Bearer " + b"x" * 120 + b".y.z\r\n"
        while not self.stop.is_set():
            try:
                get(self.port, b"/gpio", bad, source="127.0.5.1", timeout=2)
                self.flood_answers += 1
            except OSError:
                pass

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(2)  # let the idle and slowloris sets fill up
        self.t0 = time.time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.time() - self.t0
        self.stop.set()
        for t in self.threads:
            t.join(5)


def metric(port, name):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    if not BINARY.exists():
        sys.exit("build it first: firmware/build.sh unix")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_device(pathlib.Path(tmp), port)
        try:
            quiet, quiet_fail = probe(port, n)
            with Attack(port) as attack:
                attacked, attacked_fail = probe(port, n)
            counters = {k: metric(port, "iot_http_" + k) for k in (
                "connections_evicted_total", "timeouts_total", "connections_refused_total")}
        finally:
            proc.terminate()
            proc.wait(5)
    print("livez on the unix build, %d probes each, new connection per probe" % n)
    print("%-10s %8s %8s %8s %9s" % ("", "p50 ms", "p99 ms", "max ms", "failures"))
    for name, times, fails in (("quiet", quiet, quiet_fail), ("attacked", attacked, attacked_fail)):
        print("%-10s %8.2f %8.2f %8.2f %9d" % (name, pct(times, 0.5), pct(times, 0.99),
                                              times[-1] * 1000 if times else float("nan"), fails))
    print("p99 attacked / quiet: %.2fx" % (pct(attacked, 0.99) / pct(quiet, 0.99)))
    print("attack: %d idle + %d slowloris sockets kept up (re-opened when dropped), %d "
          "connections opened, bad-token flood "
          "answered %.0f req/s over %.1f s" % (IDLE, SLOWLORIS, attack.opened,
                                               attack.flood_answers / attack.seconds,
                                               attack.seconds))
    print("device: " + ", ".join("%s %d" % (k, v or 0) for k, v in counters.items()))


if __name__ == "__main__":
    main()
