"""Two fleet-server replicas on one PostgreSQL database behave as one service."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleet_devtools.pg_cluster import LocalPostgres
from fleet_devtools.device_sim import REQUESTS_PER_ROUND, REQUESTS_TO_REGISTER, provision_devices, run_fleet
from fleet_devtools.fleet_harness import FleetServer, admin_json, assert_error, new_id, registration_body
from fleet_server.storage import open_storage


def start_pair(url: str, log_dir, *extra: str) -> list[FleetServer]:
    return [FleetServer(url, *extra, "--replica-id", name, log_dir=log_dir).start() for name in ("replica-a", "replica-b")]


@pytest.fixture(scope="module")
def pair(postgres, tmp_path_factory):
    url = postgres.create_database()
    servers = start_pair(url, tmp_path_factory.mktemp("replicas"))
    yield servers
    assert [s.stop() for s in servers] == [0, 0]


def provision(url: str) -> dict:
    return admin_json(url, "provision", "--id", new_id(), "--tenant", "acme", "--namespace", "plant1",
                      "--role", "relays")


def register_split(a: FleetServer, b: FleetServer, prov: dict) -> str:
    """Challenge on one replica, proof on the other; returns the device token."""
    with a.client() as ca, b.client() as cb:
        nonce = ca.post(f"/api/devices/{prov['device_id']}/challenge").json()["nonce"]
        res = cb.post("/api/devices", json=registration_body(prov, nonce))
        assert res.status_code == 200, res.text
        # the nonce is spent service-wide: replaying it on the replica that issued it fails
        assert_error(ca.post("/api/devices", json=registration_body(prov, nonce)), 401, "nonce")
    return res.json()["token"]


def state_path(prov: dict) -> str:
    return f"/api/tenants/acme/namespaces/plant1/devices/{prov['device_id']}/state"


def test_registration_split_across_replicas(pair):
    a, b = pair
    prov = provision(a.db)
    token = register_split(a, b, prov)
    hb = {"uptime_s": 5, "free_heap": 120000, "health": {"wifi": "ok"}}
    for srv in (a, b):  # a token minted by either replica is good on both
        with srv.client(token) as c:
            assert c.post(f"/api/devices/{prov['device_id']}/heartbeat", json=hb).json() == {"ok": True, "actions": []}
    # a wrong proof on one replica spends the nonce for the other as well
    with a.client() as ca, b.client() as cb:
        nonce = cb.post(f"/api/devices/{prov['device_id']}/challenge").json()["nonce"]
        assert_error(ca.post("/api/devices", json=registration_body(prov, nonce, proof="0" * 64)), 401, "wrong proof")
        assert_error(cb.post("/api/devices", json=registration_body(prov, nonce)), 401, "nonce")
    assert admin_json(a.db, "heartbeat", "--id", prov["device_id"])["heartbeat"]["uptime_s"] == 5


def test_state_alternating_replicas_and_action_delivered_once(pair):
    a, b = pair
    prov = provision(a.db)
    token = register_split(b, a, prov)
    with a.client(token) as ca, b.client(token) as cb:
        for version in range(6):
            res = (ca, cb)[version % 2].put(state_path(prov), json={"reported": {"n": version}, "version": version})
            assert res.status_code == 200 and res.json()["version"] == version + 1
        assert ca.get(state_path(prov)).json() == cb.get(state_path(prov)).json()
        assert cb.get(state_path(prov)).json()["reported"] == {"n": 5}
        admin_json(a.db, "action", "--id", prov["device_id"], "reboot")
        hb = {"uptime_s": 1, "free_heap": 1, "health": {}}
        got = [c.post(f"/api/devices/{prov['device_id']}/heartbeat", json=hb).json()["actions"] for c in (cb, ca)]
    assert got == [["reboot"], []]


def _concurrently(n: int, fn) -> list:
    barrier, out = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_concurrent_writes_through_both_replicas_lose_nothing(pair):
    a, b = pair
    prov = provision(a.db)
    token = register_split(a, b, prov)
    headers = {"Authorization": f"Bearer {token}"}
    urls = [a.url, b.url]
    for version in range(4):  # six devices-worth of writers naming the same version: one wins
        statuses = _concurrently(6, lambda i: httpx.put(urls[i % 2] + state_path(prov), headers=headers, timeout=10,
                                                        json={"reported": {"w": i}, "version": version}))
        assert sorted(r.status_code for r in statuses) == [200] + [409] * 5
        assert all(r.json()["version"] == version + 1 for r in statuses)
    now = time.time()
    batch = {"device_id": prov["device_id"], "dropped": 1, "alarms": [
        {"type": "overtemp", "severity": "warning", "source": "t", "count": 1, "first_seen": now, "last_seen": now}]}

    def post_alarms(i):
        return [httpx.post(urls[i % 2] + "/api/alarms", headers=headers, json=batch, timeout=10).status_code
                for _ in range(5)]

    assert _concurrently(6, post_alarms) == [[200] * 5] * 6
    listed = admin_json(a.db, "alarms", "--id", prov["device_id"])
    assert [x["count"] for x in listed["alarms"]] == [30] and listed["dropped"] == 30


LEASED_JOBS = ("housekeeping", "alarm_escalation", "rollout_evaluation")


def _job_metrics(srv: FleetServer, job: str = "housekeeping") -> tuple[float, float]:
    text = httpx.get(srv.url + "/metrics", timeout=5).text
    samples = {(s.name, s.labels.get("job")): s.value for fam in text_string_to_metric_families(text)
               for s in fam.samples}
    return samples[("fleet_background_runs_total", job)], samples[("fleet_background_lease_held", job)]


def _wait_for(predicate, timeout_s: float = 10):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_background_work_runs_on_one_replica_and_fails_over(postgres, tmp_path):
    url = postgres.create_database()
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps({"housekeeping_interval_s": 0.2, "escalation_check_s": 0.2, "rollout_check_s": 0.2}))
    servers = start_pair(url, tmp_path, "--config", str(cfg))
    store = open_storage(url)
    try:
        prov = provision(url)
        store.put_nonce("stale-nonce", prov["device_id"], time.time() - 7200)
        _wait_for(lambda: store._one("SELECT nonce FROM nonces WHERE nonce=?", ("stale-nonce",)) is None)
        time.sleep(1.0)  # several ticks on both replicas
        metrics = [_job_metrics(s) for s in servers]
        holders = [i for i, (runs, held) in enumerate(metrics) if held == 1]
        assert len(holders) == 1, metrics
        holder, other = servers[holders[0]], servers[1 - holders[0]]
        assert metrics[holders[0]][0] >= 3 and metrics[1 - holders[0]][0] == 0, metrics
        assert store.get_lease("housekeeping")["holder"] == ("replica-a", "replica-b")[holders[0]]
        for job in LEASED_JOBS[1:]:  # alarm escalation and rollout evaluation: once per fleet, not per replica
            runs = [_job_metrics(s, job)[0] for s in servers]
            assert sorted(r > 0 for r in runs) == [False, True], (job, runs)
        assert holder.stop() == 0  # a clean stop releases the lease: the other replica takes over
        _wait_for(lambda: _job_metrics(other)[0] > 0)
        assert _job_metrics(other)[1] == 1
    finally:
        store.close()
        for s in servers:
            if s.proc.poll() is None:
                assert s.stop() == 0


def test_simulated_devices_across_both_replicas(pair):
    a, b = pair
    store = open_storage(a.db)
    try:
        provs = provision_devices(store, 20, prefix=new_id("sim"), tenant="acme", namespace="plant1")
        stats = asyncio.run(run_fleet(provs, [("127.0.0.1", a.port), ("127.0.0.1", b.port)], rounds=3))
        assert stats.errors == []
        assert stats.summary()["requests"] == 20 * (REQUESTS_TO_REGISTER + 3 * REQUESTS_PER_ROUND)
        for prov in provs:  # what the devices did is all there, whichever replica took it
            assert store.get_state(prov["device_id"])["version"] == 3
            assert [x["count"] for x in store.list_alarms("acme", prov["device_id"])] == [3]
            assert store.get_heartbeat(prov["device_id"])["uptime_s"] == 60
        # a device whose key is wrong is counted as an error (401 on its proof), not a crash
        impostor = dict(provs[0], device_key="0" * 64)
        bad = asyncio.run(run_fleet([impostor], [("127.0.0.1", a.port), ("127.0.0.1", b.port)], rounds=1))
        assert len(bad.errors) == 1 and "-> 401" in bad.errors[0]
    finally:
        store.close()


def test_database_gone_makes_a_replica_unready_and_it_still_stops_cleanly(tmp_path):
    pg = LocalPostgres().start()  # its own cluster: this test stops it
    try:
        srv = FleetServer(pg.create_database(), log_dir=tmp_path).start()
        with srv.client() as c:
            assert c.get("/health/readyz").status_code == 200
            pg.stop()
            res = c.get("/health/readyz", timeout=30)
            assert res.status_code == 503 and res.json()["checks"]["state"].startswith("fail")
        assert srv.stop() == 0
    finally:
        pg.stop()
