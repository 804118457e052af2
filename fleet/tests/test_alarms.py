"""Alarm batches from devices, deduplicated by (device, type, source); listing for API callers."""

from fleet_devtools.fleet_harness import Device, admin_json, api_token, assert_error


def _alarm(**kw):
    alarm = {"type": "overtemp", "severity": "warning", "source": "t", "count": 2,
             "first_seen": 1000.0, "last_seen": 1010.0, "message": "hot"}
    alarm.update(kw)
    return alarm


def test_batches_are_deduplicated_by_device_type_source(server, device):
    with device.client() as c:
        res = c.post("/api/alarms", json={"device_id": device.id, "alarms": [
            _alarm(), _alarm(type="relay_stuck", source="pump", severity="critical", count=1)], "dropped": 3})
        assert res.status_code == 200 and res.json() == {"accepted": 2}
        res = c.post("/api/alarms", json={"device_id": device.id, "dropped": 1, "alarms": [
            _alarm(count=5, first_seen=990.0, last_seen=1050.0, message=None)]})
        assert res.json() == {"accepted": 1}
    out = admin_json(server.db, "alarms", "--id", device.id)
    by_type = {a["type"]: a for a in out["alarms"]}
    assert by_type["overtemp"]["count"] == 7
    assert by_type["overtemp"]["first_seen"] == 990.0 and by_type["overtemp"]["last_seen"] == 1050.0
    assert by_type["overtemp"]["message"] == "hot"
    assert by_type["relay_stuck"]["severity"] == "critical"
    assert out["dropped"] == 4


def test_admin_lists_only_own_tenant(server):
    mine, theirs = Device(server, tenant="initech"), Device(server, tenant="umbrella")
    for dev in (mine, theirs):
        with dev.client() as c:
            assert c.post("/api/alarms", json={"device_id": dev.id, "alarms": [_alarm()]}).status_code == 200
    admin = api_token(server.db, "initech", "plant1")
    with server.client(admin) as c:
        for path in ("/alarms/", "/api/alarms"):
            listed = c.get(path).json()["alarms"]
            assert {a["device_id"] for a in listed} == {mine.id}, path
        one = c.get("/api/alarms", params={"device_id": mine.id}).json()
        assert [a["count"] for a in one["alarms"]] == [2]
        assert_error(c.get("/api/alarms", params={"device_id": theirs.id}), 403)
        assert_error(c.get("/api/alarms", params={"device_id": "ghost"}), 404)
    with mine.client() as c:  # a device may read its own alarms
        assert [a["device_id"] for a in c.get("/api/alarms", params={"device_id": mine.id}).json()["alarms"]] \
            == [mine.id]
        assert_error(c.get("/api/alarms", params={"device_id": theirs.id}), 403)


def test_listing_needs_alarms_read(server, device):
    viewer = api_token(server.db, device.tenant, device.namespace, "viewer")
    with server.client(viewer) as c:
        assert_error(c.get("/alarms/"), 403, "alarms:read")
    with server.client() as c:
        assert_error(c.get("/alarms/"), 401)


def test_device_cannot_post_for_another_device(server, device):
    other = Device(server)
    with device.client() as c:
        assert_error(c.post("/api/alarms", json={"device_id": other.id, "alarms": [_alarm()]}), 403)
    assert admin_json(server.db, "alarms", "--id", other.id)["alarms"] == []


def test_bad_alarm_is_400_and_nothing_of_the_batch_is_stored(server, device):
    with device.client() as c:
        res = c.post("/api/alarms", json={"device_id": device.id,
                                          "alarms": [_alarm(), _alarm(type="x", severity="fatal")]})
        assert_error(res, 400, "body.alarms.1.severity")
        assert_error(c.post("/api/alarms", json={"device_id": device.id, "alarms": [_alarm(count=0)]}), 400,
                     "body.alarms.0.count")
        assert_error(c.post("/api/alarms", json={"device_id": device.id, "alarms": [], "dropped": -1}), 400,
                     "body.dropped")
    assert admin_json(server.db, "alarms", "--id", device.id) == {"alarms": [], "dropped": 0}
