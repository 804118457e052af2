"""The console's session and its refusals, over plain HTTP (the browser run is tests/system/test_console_browser.py)."""

from contextlib import contextmanager

from fleet_devtools.fleet_harness import Device, api_token, new_id


@contextmanager
def _session(server, token):
    with server.client() as c:
        yield c, c.post("/console/login", data={"token": token})


def test_login_needs_an_api_token_with_devices_read(server, device):
    with _session(server, device.token) as (_, res):  # a device token
        assert res.status_code == 401 and "devices:read" in res.text
    with _session(server, api_token(server.db, device.tenant, device.namespace, "viewer")) as (c, res):
        assert res.status_code == 303 and res.headers["location"] == "/console/"
        cookie = res.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        assert device.id in c.get("/console/").text
        # a viewer may look but not switch, and the refusal changes nothing
        res = c.post(f"/console/devices/{device.id}/relays/r1", data={"state": "HIGH"})
        assert res.status_code == 403 and "state:write" in res.text
        with device.client() as dc:
            assert dc.get(device.state_path).json()["desired"] == {}
        res = c.post("/console/logout")
        assert res.status_code == 303
        assert c.get("/console/").status_code == 303  # the cookie is gone


def test_errors_are_pages_with_escaped_text(server, device):
    other = Device(server, namespace=new_id("ns"))
    with _session(server, api_token(server.db, device.tenant, device.namespace, "admin")) as (c, _):
        res = c.get("/console/devices/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        assert res.status_code == 404 and "<img" not in res.text and "&lt;img src=x" in res.text
        assert c.get(f"/console/devices/{other.id}").status_code == 403
        res = c.post(f"/console/devices/{device.id}/relays/r1", data={"state": "ON"})
        assert res.status_code == 400 and "HIGH or LOW" in res.text
        res = c.post(f"/console/devices/{device.id}/relays/r1", data={"state": "HIGH"})
        assert res.status_code == 303
        with device.client() as dc:
            assert dc.get(device.state_path).json()["desired"] == {"relays": {"r1": "HIGH"}}
        # the harness registers port 8080, where nothing listens: the chart's feed says so
        res = c.get(f"/console/devices/{device.id}/sensors.json")
        assert res.status_code == 503 and "not reachable" in res.json()["detail"]
