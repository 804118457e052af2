"""The storage contract of the operator's side (inventory, audit log, alarm lifecycle, webhooks,
rollouts), on SQLite and on PostgreSQL, including writers on two handles (two replicas) at once."""

from __future__ import annotations

import pytest

from fleet_server.storage import AlreadyExists, NotFound, StateChanged

from test_storage import provision, race, store, target, two_handles  # noqa: F401 (fixtures)


def test_inventory_lists_filters_pages_and_counts_online(store):
    provision(store, "d1")
    provision(store, "d2")
    store.create_device({"id": "d3", "tenant": "acme", "namespace": "other", "role": "sensors", "device_key": "k"})
    provision(store, "g1", tenant="globex")
    store.update_registration("d1", {"firmware_version": "1.0.0"})
    store.mark_seen("d1", 1000.0)
    store.mark_seen("d1", 900.0)  # a late write from another replica does not move it back
    store.mark_seen("d3", 500.0)
    store.mark_seen("g1", 1000.0)
    devices, total = store.list_devices("acme")
    assert total == 3 and [(d["id"], d["last_seen"]) for d in devices] == [("d1", 1000.0), ("d2", None), ("d3", 500.0)]
    assert devices[0]["registration"] == {"firmware_version": "1.0.0"} and devices[1]["registration"] is None
    assert [d["id"] for d in store.list_devices("acme", seen_after=600.0)[0]] == ["d1"]
    assert [d["id"] for d in store.list_devices("acme", offline_before=600.0)[0]] == ["d2", "d3"]
    assert [d["id"] for d in store.list_devices("acme", role="sensors")[0]] == ["d3"]
    assert [d["id"] for d in store.list_devices("acme", namespace="ns")[0]] == ["d1", "d2"]
    assert store.list_devices("acme", device_id="g1") == ([], 0)  # another tenant's device
    page, total = store.list_devices("acme", limit=1, offset=1)
    assert total == 3 and [d["id"] for d in page] == ["d2"]
    assert store.count_online(600.0) == {("acme", "relays"): 1, ("globex", "relays"): 1}


def test_delete_device_removes_every_row_and_is_audited(store):
    provision(store, "d1")
    provision(store, "d2")
    for device_id in ("d1", "d2"):
        store.mark_seen(device_id, 1.0)
        store.record_heartbeat(device_id, {"uptime_s": 1})
        store.queue_action(device_id, "reboot")
        store.put_config(device_id, {"a": 1})
        store.put_reported(device_id, {"x": 1}, 0)
        store.merge_alarms(device_id, [{"type": "t", "source": "s", "severity": "warning", "count": 1,
                                        "first_seen": 1.0, "last_seen": 1.0}], dropped=0)
        store.put_alarm_status({"device_id": device_id, "type": "t", "source": "s", "status": "acknowledged",
                                "opened_at": 1.0, "changed_at": 2.0, "changed_by": "op"})
    store.delete_device("d1")
    assert store.get_device("d1") is None and store.get_heartbeat("d1") is None
    assert store.take_actions("d1") == [] and store.get_config("d1") == (0, {})
    assert store.get_state("d1")["version"] == 0 and store.get_alarm_status("d1", "t", "s") is None
    assert store.list_alarm_records("acme", "d1") == []
    assert [d["id"] for d in store.list_devices("acme")[0]] == ["d2"]  # the other device keeps everything
    assert store.take_actions("d2") == ["reboot"] and store.get_alarm_status("d2", "t", "s")["status"] == "acknowledged"
    assert store.list_secret_audit("device:d1")[-1]["action"] == "delete_device_key"
    with pytest.raises(NotFound):
        store.delete_device("d1")


def test_tenant_roles_and_api_key_replacement_sealed_at_rest(store):
    provision(store)
    store.set_tenant_roles("acme", {"viewer": ["devices:read"]})
    assert store.get_tenant("acme")["roles"] == {"viewer": ["devices:read"]}
    store.rotate_tenant_key("acme", "with-grace", 3600)
    assert store.get_tenant("acme")["api_keys"] == ["with-grace", "key-acme"]
    store.rotate_tenant_key("acme", "replaced", 0)
    tenant = store.get_tenant("acme")
    assert tenant["api_key"] == "replaced" and tenant["api_keys"] == ["replaced"]  # no grace: old keys are gone
    row = store._one("SELECT api_key, prev_api_key, prev_key_until FROM tenants WHERE tenant=?", ("acme",))
    assert row["api_key"].startswith("enc:v1:") and "replaced" not in row["api_key"]
    assert row["prev_api_key"] is None and row["prev_key_until"] is None  # not kept past its (zero) grace
    last = store.list_secret_audit("tenant:acme")[-1]
    assert (last["action"], last["detail"]["grace_s"]) == ("rotate_api_key", 0)
    for call in (lambda: store.set_tenant_roles("nope", {}), lambda: store.rotate_tenant_key("nope", "k", 0),
                 lambda: store.rotate_device_key("nope", "k", 0)):
        with pytest.raises(NotFound):
            call()


def test_secret_audit_names_the_tenant_and_the_caller(store):
    provision(store, "d1")
    provision(store, "g1", tenant="globex")
    store.rotate_device_key("d1", "new-d1", 60, actor="alice")
    store.rotate_tenant_key("globex", "new-g", 60)
    store.delete_device("d1")
    store.record_secret_audit("add_master_key", "keyring", {"key_id": "k2"})
    acme = store.list_secret_audit(tenant="acme")
    assert [(e["action"], e["subject"]) for e in acme] == [
        ("create_tenant_key", "tenant:acme"), ("create_device_key", "device:d1"), ("rotate_device_key", "device:d1"),
        ("delete_device_key", "device:d1")]
    assert acme[2]["actor"] == f"alice via {store.actor}" and acme[3]["actor"] == store.actor
    assert [e["action"] for e in store.list_secret_audit("device:d1", tenant="globex")] == []
    assert [e["action"] for e in store.list_secret_audit(tenant="globex")][-1] == "rotate_api_key"
    assert store.list_secret_audit()[-1]["tenant"] is None  # server-wide
    assert [e["action"] for e in store.list_secret_audit(tenant="acme", limit=2)] == [
        "rotate_device_key", "delete_device_key"]  # the newest, oldest first


def test_audit_log_newest_first_by_tenant_and_literal_prefix(store):
    for i, (tenant, action) in enumerate([("acme", "alarm.ack"), ("acme", "alarm_x.y"), ("globex", "alarm.ack"),
                                          ("acme", "device.provision"), ("acme", "Alarm.ack")]):
        store.append_audit({"at": float(i), "tenant": tenant, "actor": "op", "action": action, "target": f"t{i}",
                            "detail": {"i": i}})
    entries = store.list_audit("acme")
    assert [e["action"] for e in entries] == ["Alarm.ack", "device.provision", "alarm_x.y", "alarm.ack"]
    assert entries[0]["detail"] == {"i": 4} and entries[0]["actor"] == "op" and entries[0]["at"] == 4.0
    # a prefix is literal and case-sensitive on both engines: "_" and "%" are not wildcards
    assert [e["target"] for e in store.list_audit("acme", "alarm.")] == ["t0"]
    assert [e["target"] for e in store.list_audit("acme", "alarm_")] == ["t1"]
    assert store.list_audit("acme", "%") == []
    assert [e["target"] for e in store.list_audit("acme", limit=2, offset=1)] == ["t3", "t1"]


def test_alarm_lifecycle_rows(store):
    provision(store)
    store.merge_alarms("d1", [{"type": "hot", "source": "s1", "severity": "critical", "count": 1,
                               "first_seen": 10.0, "last_seen": 20.0},
                              {"type": "cold", "source": "s1", "severity": "warning", "count": 2,
                               "first_seen": 5.0, "last_seen": 30.0}], dropped=0)
    records = store.list_alarm_records("acme")
    assert [(r["type"], r["status"], r["opened_at"], r["escalation"]) for r in records] == \
        [("cold", "open", 5.0, 0), ("hot", "open", 10.0, 0)]  # nothing recorded yet: open since first seen
    status = {"device_id": "d1", "type": "hot", "source": "s1", "status": "acknowledged",
              "opened_at": 10.0, "changed_at": 40.5, "changed_by": "op"}
    store.put_alarm_status(status)
    store.put_alarm_status(dict(status, status="cleared", changed_at=41.25, escalation=2))  # replaces
    assert store.get_alarm_status("d1", "hot", "s1") == dict(status, status="cleared", changed_at=41.25, escalation=2)
    assert store.get_alarm_status("d1", "hot", "other") is None
    assert [r["type"] for r in store.list_alarm_records(None, "d1", ["cleared"])] == ["hot"]
    assert [r["type"] for r in store.list_alarm_records("acme", statuses=["open", "acknowledged"])] == ["cold"]
    assert store.list_alarm_records("globex") == []


def test_webhooks_replace_and_keep_their_secret_sealed(store):
    hook = {"tenant": "acme", "name": "ops", "url": "http://127.0.0.1:9/a", "secret": "s3cret",
            "format": "json", "min_severity": "warning"}
    store.put_webhook(hook)
    store.put_webhook(dict(hook, url="http://127.0.0.1:9/b", secret="n3w"))
    store.put_webhook(dict(hook, tenant="globex"))
    assert store.list_webhooks("acme") == [dict(hook, url="http://127.0.0.1:9/b", secret="n3w")]
    raw = store._one("SELECT secret FROM webhooks WHERE tenant=? AND name=?", ("acme", "ops"))["secret"]
    assert raw.startswith("enc:v1:") and "n3w" not in raw
    store.delete_webhook("acme", "ops")
    assert store.list_webhooks("acme") == [] and len(store.list_webhooks("globex")) == 1
    with pytest.raises(NotFound):
        store.delete_webhook("acme", "ops")


def test_rollouts(store):
    first = {"name": "r1", "tenant": "acme", "artifact": "fw-1", "state": "canary", "created_at": 1.0}
    store.create_rollout(first)
    store.create_rollout({"name": "r2", "tenant": "globex", "artifact": "fw-2", "state": "canary", "created_at": 2.0})
    with pytest.raises(AlreadyExists):
        store.create_rollout(dict(first, tenant="globex"))
    store.update_rollout(dict(first, state="promoted"))
    assert store.list_rollouts("acme") == [dict(first, state="promoted")]
    assert [r["name"] for r in store.list_rollouts(None)] == ["r1", "r2"]
    with pytest.raises(NotFound):
        store.update_rollout(dict(first, name="nope"))


# ---- two replicas writing at once -----------------------------------------------------------------

def test_concurrent_writers_on_two_handles(two_handles):
    a, b = two_handles
    provision(a)
    handles = (a, b)
    n = 8
    created = race(n, lambda i: handles[i % 2].create_rollout(
        {"name": "same", "tenant": "acme", "artifact": f"fw-{i}", "created_at": float(i)}))
    assert sum(r is None for r in created) == 1 and all(isinstance(r, (type(None), AlreadyExists)) for r in created)
    # upserts: first writes of one key from both replicas at once all succeed, the newest seen time wins
    hooks = race(n, lambda i: handles[i % 2].put_webhook({"tenant": "acme", "name": "h", "url": f"http://x/{i}",
                                                          "secret": "s", "format": "json",
                                                          "min_severity": "info"}))
    statuses = race(n, lambda i: handles[i % 2].put_alarm_status(
        {"device_id": "d1", "type": "t", "source": "s", "status": "open", "opened_at": 1.0,
         "changed_at": float(i), "changed_by": f"r{i % 2}"}))
    seen = race(n, lambda i: handles[i % 2].mark_seen("d1", 100.0 + i))
    assert hooks == statuses == seen == [None] * n
    assert len(b.list_webhooks("acme")) == 1 and a.get_alarm_status("d1", "t", "s") is not None
    assert a.list_devices("acme")[0][0]["last_seen"] == 100.0 + n - 1


def test_a_rollout_update_conditional_on_its_state(two_handles):
    a, b = two_handles
    rollout = {"name": "r", "tenant": "acme", "artifact": "fw", "state": "canary", "created_at": 1.0, "progress": {}}
    a.create_rollout(rollout)
    b.update_rollout(dict(rollout, state="halted"), expected_state="canary")  # an operator halts, on one replica
    with pytest.raises(StateChanged) as exc:  # the evaluator's update, read before the halt, on the other
        a.update_rollout(dict(rollout, progress={"d1": "committed"}), expected_state="canary")
    assert exc.value.current == "halted" and a.list_rollouts("acme")[0]["state"] == "halted"
    # concurrent finishes: exactly one wins
    a.create_rollout(dict(rollout, name="r2"))
    results = race(6, lambda i: (a, b)[i % 2].update_rollout(dict(rollout, name="r2", state="promoted"),
                                                             expected_state="canary"))
    assert sum(r is None for r in results) == 1 and all(isinstance(r, (type(None), StateChanged)) for r in results)
    with pytest.raises(NotFound):
        a.update_rollout(dict(rollout, name="nope"), expected_state="canary")


def test_an_alarm_status_write_conditional_on_the_row_as_read(two_handles):
    a, b = two_handles
    provision(a)
    row = {"device_id": "d1", "type": "t", "source": "s", "status": "open", "opened_at": 1.0,
           "changed_at": 1.0, "changed_by": "device"}
    # two replicas opening the same alarm at once: one inserts, the other hears it exists
    results = race(6, lambda i: (a, b)[i % 2].put_alarm_status(row, expected_changed_at=None))
    assert sum(r is None for r in results) == 1 and all(isinstance(r, (type(None), StateChanged)) for r in results)
    b.put_alarm_status(dict(row, status="acknowledged", changed_at=2.0, changed_by="op"), expected_changed_at=1.0)
    with pytest.raises(StateChanged) as exc:  # the escalation read the open row before the ack
        a.put_alarm_status(dict(row, changed_at=3.0, changed_by="escalation", escalation=1), expected_changed_at=1.0)
    assert exc.value.current == "acknowledged" and a.get_alarm_status("d1", "t", "s")["status"] == "acknowledged"
