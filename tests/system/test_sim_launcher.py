"""`make sim` as a user runs it: the launcher's printed token and curl lines work as printed."""
import json
import signal
import subprocess
import time

import pytest

from fleet_devtools.ports import port_free
from harness.sim import start_sim

pytestmark = pytest.mark.unix


def curl(*args):
    proc = subprocess.run(["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args],
                          capture_output=True, text=True, timeout=20)
    body, _, status = proc.stdout.rpartition("\n")
    return int(status), body


def test_sim_prints_working_urls_and_token_and_stops_cleanly(tmp_path):
    proc, base, text, token = start_sim(tmp_path, 120)
    try:
        relays = "http://127.0.0.1:%d" % (base + 1)
        assert relays in text

        status, body = curl("-H", "Authorization: Bearer " + token, relays + "/gpio")
        assert status == 200, body
        assert json.loads(body)["relays"]["relay1"] == "LOW"  # safe state at boot

        status, body = curl("-H", "Authorization: Bearer " + token, "-d", '{"state": "HIGH"}',
                            relays + "/gpio/relay1")
        assert status == 200, body
        assert json.loads(body)["state"] == "HIGH"

        status, body = curl(relays + "/gpio")  # no token
        assert status == 401 and json.loads(body)["error"]

        status, body = curl("http://127.0.0.1:%d/health/readyz" % (base + 2))
        assert status == 200, body

        # time comes from the sim's own SNTP responder on loopback, not from the internet
        deadline, synced = time.time() + 30, []
        while time.time() < deadline and len(synced) < 2:
            synced = [p for p in (base + 1, base + 2)
                      if "iot_time_synced 1" in curl("http://127.0.0.1:%d/metrics" % p)[1]
                      .splitlines()]
            time.sleep(0.5)
        assert len(synced) == 2, "the sim devices did not sync from the local SNTP responder"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    for port in (base, base + 1, base + 2):
        assert port_free(port), "port %d still served after Ctrl-C" % port
