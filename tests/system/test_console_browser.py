"""The web console in a real browser (Debian's chromium driven by Playwright) against `make sim`:
log in, see both sim devices online, switch a relay and see the device's pin change, watch the
sensor chart move, acknowledge an alarm. Screenshots are saved in the test's tmp_path."""
import os
import signal
import time

import httpx
import pytest
from playwright.sync_api import sync_playwright

from harness.sim import start_sim

pytestmark = [pytest.mark.unix, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def wait_for(what, fn, timeout=60, every=0.3):  # generous: 2 shared cores, devices booting
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, last))


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """`firmware/sim.py` as `make sim` runs it; yields (fleet URL, relays URL, admin token)."""
    work = tmp_path_factory.mktemp("sim")
    proc, base, _, token = start_sim(work, 300)
    yield "http://127.0.0.1:%d" % base, "http://127.0.0.1:%d" % (base + 1), token
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert os.path.exists(CHROMIUM), "no %s: firmware/install_toolchain.sh installs Debian's chromium" % CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


def test_nothing_is_served_without_a_login(sim):
    fleet, _, _ = sim
    for path in ("/console/", "/console/devices/sim-relays-1", "/console/alarms", "/console/rollouts"):
        res = httpx.get(fleet + path, follow_redirects=False)
        assert res.status_code == 303 and res.headers["location"] == "/console/login", path
    res = httpx.get(fleet + "/console/devices/sim-sensors-1/sensors.json")
    assert res.status_code == 401 and res.json()["error"] == "unauthorized"
    res = httpx.post(fleet + "/console/devices/sim-relays-1/relays/relay1", data={"state": "HIGH"},
                     follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/console/login"
    res = httpx.post(fleet + "/console/login", data={"token": "not-a-token"})
    assert res.status_code == 401 and "malformed token" in res.text


def test_operator_session_in_a_real_browser(sim, browser, tmp_path):
    fleet, relays, token = sim
    page = browser.new_page()
    page.goto(fleet + "/console/")
    assert page.url.endswith("/console/login")
    page.screenshot(path=str(tmp_path / "01-login.png"))
    page.fill("#token", token)
    page.click("#login")
    page.wait_for_url(fleet + "/console/")

    # both sim devices online (first heartbeats arrive right after registration)
    def both_online():
        page.reload()
        return all("online" == page.inner_text(f"#device-sim-{role}-1 td:nth-child(3)").strip()
                   for role in ("relays", "sensors"))
    wait_for("both devices online", both_online)
    assert page.inner_text("#tile-online b") == "2"
    page.screenshot(path=str(tmp_path / "02-overview.png"), full_page=True)

    # switch relay1 from the device page: desired state -> the device applies it -> its pin is HIGH
    auth = {"Authorization": "Bearer " + token}
    assert httpx.get(relays + "/gpio", headers=auth).json()["relays"]["relay1"] == "LOW"
    page.click("#device-sim-relays-1 a")

    def switch_shown():
        page.reload()
        return page.query_selector("#relay-relay1 button")
    wait_for("relay1's switch", switch_shown)
    page.click("#relay-relay1 button")
    wait_for("relay1 pin HIGH", lambda: httpx.get(relays + "/gpio", headers=auth).json()["relays"]["relay1"] == "HIGH")

    def reported_high():
        page.reload()
        return page.inner_text("#relay-relay1 .reported") == "HIGH"
    wait_for("page shows relay1 HIGH", reported_high)
    page.screenshot(path=str(tmp_path / "03-relay-switched.png"), full_page=True)

    # the sensors device's chart moves
    page.goto(fleet + "/console/devices/sim-sensors-1")
    wait_for("samples", lambda: page.evaluate("window.fleetChart.samples") >= 5)
    before = page.evaluate("window.fleetChart.series.wave.map(p => p[1])")
    time.sleep(2)
    after = page.evaluate("window.fleetChart.series.wave.map(p => p[1])")
    assert len(after) > len(before) and len(set(after)) > 1, (before, after)
    page.screenshot(path=str(tmp_path / "04-sensor-chart.png"), full_page=True)

    # acknowledge an alarm (the sim's wave crosses its threshold_high)
    def ack_button():
        page.goto(fleet + "/console/alarms")
        return page.query_selector("button.ack")
    wait_for("an open alarm", ack_button, timeout=60)
    row_id = page.evaluate("document.querySelector('button.ack').closest('tr').id")
    page.click("button.ack")
    page.wait_for_url(fleet + "/console/alarms")
    status = page.inner_text(f"#{row_id} .status")
    assert status in ("acknowledged", "cleared"), status  # the device may clear it right after
    page.screenshot(path=str(tmp_path / "05-alarm-acknowledged.png"), full_page=True)
    audit = httpx.get(fleet + "/api/admin/audit", params={"action": "alarm.acknowledged"}, headers=auth).json()
    assert [e["actor"] for e in audit["entries"]][:1] == ["admin"], audit
    assert audit["entries"][0]["target"].startswith("sim-sensors-1/"), audit
    print("screenshots in", tmp_path)
