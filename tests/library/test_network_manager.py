"""NetworkManager on the simulated link: the test drops and restores the link through its
control file and watches backoff, reconnects, events and the reachability probe."""
import socket

import pytest

from harness.run import run_unix
from harness.scripts import device_script, script_env

pytestmark = pytest.mark.unix


def test_backoff_and_reconnect_with_sim_link_dropped_and_restored(tmp_path):
    control = tmp_path / "link"
    control.write_text("up")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        out = run_unix(device_script(__file__, "network_backoff_and_reconnect.py"),
                       env=script_env(port=port), cwd=str(tmp_path)).splitlines()
    finally:
        listener.close()
    assert out[0] == "True False False"  # up, power saving off
    up, grew, delays = out[1].split(" ", 2)
    assert up == "False" and grew == "True"
    delays = eval(delays)
    # doubling from 40 ms with up to +50 % jitter, capped at 200 (+100 jitter)
    assert 40 <= delays[0] <= 60 and 80 <= delays[1] <= 120
    assert all(d <= 300 for d in delays) and max(delays) >= 200
    assert out[2] == "True 0 True [True, False, True]"
    assert out[3] == "False False" and out[4] == "True"


def test_probe_failure_means_down_even_when_link_says_connected(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead_port = sock.getsockname()[1]
    sock.close()  # nothing listens here
    out = run_unix("""
import asyncio
from iotlib.network_manager import NetworkManager
from iotlib.link_sim import SimLink
net = NetworkManager("SSID", "PASSWORD", link=SimLink(), probe=("127.0.0.1", %d),
                     connect_timeout_ms=100)
print(asyncio.run(net.connect()), net.link.isconnected())
""" % dead_port).strip()
    assert out == "False True"


def test_a_radio_without_wifi_ssid_says_so_and_the_simulation_needs_none(tmp_path):
    # A radio link (needs_ssid) without an SSID is a failed attempt named in health, not a
    # TypeError from WLAN.connect(None); the simulated link of the unix build joins without one.
    out = run_unix("""
import asyncio
from iotlib.network_manager import NetworkManager
from iotlib.link_sim import SimLink
class Radio(SimLink):
    needs_ssid = True
    def connect(self, ssid, password):
        if ssid is None:
            raise TypeError("can't convert NoneType to str")
        SimLink.connect(self, ssid, password)
radio = NetworkManager(None, None, link=Radio(), connect_timeout_ms=100)
print(asyncio.run(radio.connect()), radio.radio_error, radio.failures, radio.link.connects)
sim = NetworkManager(None, None, link=SimLink(), connect_timeout_ms=100)
print(asyncio.run(sim.connect()), sim.radio_error, sim.failures)
""", cwd=str(tmp_path)).splitlines()
    assert out[0] == "False no wifi_ssid in device.json 1 0"
    assert out[1] == "True None 0"
