"""`make sim`: the reference fleet services and one device of each role, on loopback.

    .venv/bin/python firmware/sim.py [--base-port 8600] [--dir DIR] [--no-fleet]

1. starts `fleet-server` on 127.0.0.1 (SQLite database in the sim folder);
2. provisions one relays and one sensors device with `fleet-admin provision` and sets
   their configuration in the fleet (`fleet-admin config-set`);
3. starts both devices from the unix build, each from its own folder with a device.json
   holding only its credentials, the discovery URL and its port (what provisioning
   flashes): the device registers with the fleet and takes its configuration from it;
4. prints the URLs and a ready-made admin token (`fleet-admin token`), plus curl lines;
5. Ctrl-C (or SIGTERM) stops everything it started.

--no-fleet skips 1, 2 and 4's fleet token: devices get locally made keys, their
configuration in device.json (they keep retrying registration, and serve meanwhile) and the
token is signed here (HS256, the same claims the fleet issues), for when the fleet package
is not installed. Only loopback addresses are used.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from fleet_devtools.sntp import SntpResponder
from fleet_server.device_config import validate_config

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("IOTLIB_BUILD") or ROOT / "build")
BINARY = BUILD / "unix" / "micropython"
VENV_BIN = pathlib.Path(sys.executable).parent
TENANT = "demo"
NAMESPACE = "lab"

# The simulated devices' configuration, checked here by the fleet's own model
# (fleet_server.device_config, the schema the devices' validator is tested against in
# tests/library/test_config_schema_matches_fleet.py): a bad edit stops the sim at once, naming the field.
RELAYS_CONFIG = validate_config({
    "relays": {"relay1": {"pin": 2}, "relay2": {"pin": 3},
               "pump": {"pin": 4, "max_on_s": 30}},
    "interlocks": [["relay1", "relay2"]],
    "rate_limit": {"per_token_rps": 20, "per_address_rps": 50, "burst": 40},
    "heartbeat_s": 10,  # the console's uptime, heap and health stay fresh
})
SENSORS_CONFIG = validate_config({
    "sensors": {"fields": {"wave": {"source": "sim", "rate_hz": 5, "threshold_high": 24},
                           "volts": {"source": "adc0", "rate_hz": 2},
                           "chip_temp": {"source": "temp", "rate_hz": 1}},
                "max_clients": 4},
    "rate_limit": {"per_token_rps": 20, "per_address_rps": 50, "burst": 40},
    "heartbeat_s": 10,
})


def tool(name):
    path = VENV_BIN / name
    return str(path) if path.exists() else shutil.which(name)


def wait_http(url, proc, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("%s exited (status %s)" % (what, proc.returncode))
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit("%s did not answer on %s" % (what, url))


def wait_ready(url, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return True
        except Exception:  # 503 until registered and configured
            time.sleep(0.2)
    return False


def admin(db, *args):
    out = subprocess.run([tool("fleet-admin"), "--db", str(db)] + list(args),
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SystemExit("fleet-admin %s: %s" % (args[0], out.stderr.strip()))
    return json.loads(out.stdout)


def local_token(api_key, role="admin", ttl=24 * 3600):
    """An API JWT like the fleet's, for --no-fleet runs."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=")
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "sim-admin", "tenant": TENANT, "namespace": NAMESPACE,
                           "role": role, "iss": "fleet", "aud": "iotlib", "iat": now,
                           "exp": now + ttl}).encode())
    sig = b64(hmac.new(api_key.encode(), head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + sig).decode()


def device_settings(identity, port, sd_url, config=None):
    """device.json for one device: its credentials, discovery and port. The configuration
    comes from the fleet; only --no-fleet runs (config given) carry it here."""
    settings = {"device_id": identity["device_id"], "device_key": identity["device_key"],
                "api_key": identity["api_key"], "tenant": identity["tenant"],
                "namespace": identity["namespace"], "role": identity["role"],
                "service_discovery_url": sd_url, "host": "127.0.0.1", "port": port,
                "config_poll_s": 5, "state_poll_s": 5}
    if identity["role"] == "relays":
        settings["restore_desired"] = True
    if config is not None:
        settings["rate_limit"] = config["rate_limit"]
        if identity["role"] == "relays":
            settings["relays"] = config["relays"]
            settings["interlocks"] = config["interlocks"]
        else:
            settings["fields"] = config["sensors"]["fields"]
            settings["max_clients"] = config["sensors"]["max_clients"]
    return settings


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-port", type=int, default=8600,
                    help="fleet on this port, relays on +1, sensors on +2")
    ap.add_argument("--dir", help="keep the sim's files here (default: a temporary folder)")
    ap.add_argument("--no-fleet", action="store_true", help="devices only, no fleet services")
    ap.add_argument("--for-seconds", type=float, default=0,
                    help="stop by itself after this long (for tests and CI)")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if not BINARY.exists():
        raise SystemExit("%s is missing: run `make unix` first" % BINARY)
    use_fleet = not a.no_fleet
    if use_fleet and not (tool("fleet-server") and tool("fleet-admin")):
        raise SystemExit("fleet-server/fleet-admin not found: `.venv/bin/pip install -e fleet`"
                         " (or run with --no-fleet)")
    work = pathlib.Path(a.dir or tempfile.mkdtemp(prefix="iotlib-sim-"))
    work.mkdir(parents=True, exist_ok=True)
    fleet_port, relays_port, sensors_port = a.base_port, a.base_port + 1, a.base_port + 2
    fleet_url = "http://127.0.0.1:%d" % fleet_port
    sd_url = fleet_url + "/api"
    procs = []

    def stop(*_):
        for name, p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for name, p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        raise SystemExit(0)

    # The devices' time source: the host's clock over SNTP on loopback, so the simulation asks
    # nothing of the internet (the fleet's default would be pool.ntp.org)
    sntp = SntpResponder()
    ntp_servers = ["127.0.0.1:%d" % sntp.port]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # Ctrl-C, even when started with SIGINT ignored
    try:
        if use_fleet:
            db = work / "fleet.sqlite"
            log = open(work / "fleet-server.log", "a")
            p = subprocess.Popen([tool("fleet-server"), "--db", str(db), "--host", "127.0.0.1",
                                  "--port", str(fleet_port)], stdout=log, stderr=log)
            procs.append(("fleet-server", p))
            wait_http(fleet_url + "/health/livez", p, "fleet-server")
            identities = []
            for role, config in (("relays", RELAYS_CONFIG), ("sensors", SENSORS_CONFIG)):
                device_id = "sim-%s-1" % role
                existing = work / device_id / "device.json"
                if existing.exists():  # a kept --dir: reuse the provisioning
                    ident = json.loads(existing.read_text())
                else:
                    ident = admin(db, "provision", "--id", device_id, "--tenant", TENANT,
                                  "--namespace", NAMESPACE, "--role", role)
                # set on every start: the SNTP responder's port is new each time
                cfg_file = work / ("%s-config.json" % role)
                cfg_file.write_text(json.dumps(dict(config, ntp_servers=ntp_servers)))
                admin(db, "config-set", "--id", device_id, "--file", str(cfg_file))
                identities.append(ident)
            token = admin(db, "token", "--tenant", TENANT, "--namespace", NAMESPACE,
                          "--role", "admin")["token"]
        else:
            api_key = secrets.token_hex(24)
            identities = [{"device_id": "sim-%s-1" % r, "device_key": secrets.token_hex(16),
                           "api_key": api_key, "tenant": TENANT, "namespace": NAMESPACE,
                           "role": r} for r in ("relays", "sensors")]
            token = local_token(api_key)

        urls = {}
        for ident, port, config in ((identities[0], relays_port, RELAYS_CONFIG),
                                    (identities[1], sensors_port, SENSORS_CONFIG)):
            folder = work / ident["device_id"]
            folder.mkdir(exist_ok=True)
            settings = device_settings(ident, port, sd_url, None if use_fleet else config)
            if not use_fleet:
                settings["ntp_servers"] = ntp_servers
            (folder / "device.json").write_text(json.dumps(settings, indent=1))
            log = open(folder / "device.log", "a")
            env = dict(os.environ)
            env.pop("MICROPYPATH", None)
            # the demo's RTC follows the host (as a battery-backed one would); with
            # IOTLIB_SIM_RTC=1609459200 the devices start in 2021 like a Pico W and answer
            # 503 until SNTP (the fleet's ntp_servers) has answered
            env.setdefault("IOTLIB_SIM_RTC", "host")
            p = subprocess.Popen([str(BINARY), "-c", "import iot_boot\niot_boot.run()"],
                                 cwd=folder, stdout=log, stderr=log, env=env)
            procs.append((ident["device_id"], p))
            url = "http://127.0.0.1:%d" % port
            wait_http(url + "/health/livez", p, ident["device_id"])
            urls[ident["role"]] = url

        if use_fleet:  # registered and configured from the fleet: readyz turns 200
            for url in urls.values():
                ready = wait_ready(url + "/health/readyz")
                if not ready:
                    print("warning: %s is not ready yet (see its device.log)" % url)
        print("iotlib simulation is up (files in %s)" % work)
        if use_fleet:
            print("  fleet services : %s   (discovery %s)" % (fleet_url, sd_url))
            print("  web console    : %s/console/   (log in with $TOKEN)" % fleet_url)
        print("  relays device  : %s   (sim-relays-1: relay1, relay2, pump)" % urls["relays"])
        print("  sensors device : %s   (sim-sensors-1: wave, volts, chip_temp)"
              % urls["sensors"])
        print("  websocket      : %s/ws?token=$TOKEN" % urls["sensors"].replace("http", "ws"))
        print()
        print("export TOKEN=%s" % token)
        print()
        print("curl -H \"Authorization: Bearer $TOKEN\" %s/gpio" % urls["relays"])
        print("curl -H \"Authorization: Bearer $TOKEN\" -d '{\"state\": \"HIGH\"}' %s/gpio/relay1"
              % urls["relays"])
        print("curl -H \"Authorization: Bearer $TOKEN\" %s/sensors" % urls["sensors"])
        print("curl %s/metrics" % urls["relays"])
        print()
        print("Ctrl-C stops everything.", flush=True)
        deadline = time.time() + a.for_seconds if a.for_seconds else None
        while deadline is None or time.time() < deadline:
            for name, p in procs:
                if p.poll() is not None:
                    print("%s exited (status %s); stopping" % (name, p.returncode))
                    stop()
            time.sleep(0.5)
        stop()
    except KeyboardInterrupt:
        stop()
    finally:
        for name, p in procs:
            if p.poll() is None:
                p.kill()


if __name__ == "__main__":
    main()
