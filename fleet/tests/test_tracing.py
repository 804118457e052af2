"""OpenTelemetry tracing: one device heartbeat round, carrying one W3C trace, followed through both
replicas' spans (request spans continuing the device's traceparent, storage spans under them)."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from fleet_devtools.fleet_harness import FleetServer, refused_at_start
from test_replicas import provision, register_split, state_path


@pytest.fixture(scope="module")
def traced_pair(postgres, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("traced")
    url = postgres.create_database()
    files = {name: tmp / f"{name}.jsonl" for name in ("replica-a", "replica-b")}
    servers = [FleetServer(url, "--replica-id", name, "--trace-exporter", f"file:{path}", log_dir=tmp).start()
               for name, path in files.items()]
    yield servers, list(files.values())
    assert [s.stop() for s in servers] == [0, 0]


def spans_of(path, trace_id: str, want: int, timeout_s: float = 10) -> list[dict]:
    """The spans of one trace in a replica's export file (written as each span ends)."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        mine = [s for s in spans if s["context"]["trace_id"] == "0x" + trace_id]
        if len(mine) >= want or time.monotonic() > deadline:
            return mine
        time.sleep(0.1)


def test_one_heartbeat_round_is_one_trace_across_both_replicas(traced_pair):
    (a, b), (file_a, file_b) = traced_pair
    prov = provision(a.db)
    token = register_split(a, b, prov)
    trace_id, hb_span, state_span = secrets.token_hex(16), secrets.token_hex(8), secrets.token_hex(8)
    with a.client(token) as ca, b.client(token) as cb:
        res = ca.post(f"/api/devices/{prov['device_id']}/heartbeat",
                      json={"uptime_s": 1, "free_heap": 1, "health": {}},
                      headers={"traceparent": f"00-{trace_id}-{hb_span}-01"})
        assert res.status_code == 200 and res.headers["traceparent"].split("-")[1] == trace_id
        res = cb.put(state_path(prov), json={"reported": {"pump": 1}, "version": 0},
                     headers={"traceparent": f"00-{trace_id}-{state_span}-01"})
        assert res.status_code == 200 and res.headers["traceparent"].split("-")[1] == trace_id

    for path, replica, parent, route, storage_calls in (
            (file_a, "replica-a", hb_span, "POST /api/devices/{device_id}/heartbeat",
             {"storage.get_device", "storage.record_heartbeat", "storage.take_actions"}),
            (file_b, "replica-b", state_span, "PUT /api/tenants/{tenant}/namespaces/{namespace}/devices/{device_id}/state",
             {"storage.get_device", "storage.put_reported", "storage.get_state"})):
        spans = spans_of(path, trace_id, want=1 + len(storage_calls))
        server = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
        assert [s["name"] for s in server] == [route]
        assert server[0]["parent_id"] == "0x" + parent  # continues the device's span
        assert server[0]["attributes"]["http.response.status_code"] == 200
        assert server[0]["resource"]["attributes"]["service.instance.id"] == replica
        children = [s for s in spans if s["parent_id"] == server[0]["context"]["span_id"]]
        assert {s["name"] for s in children} >= storage_calls
        assert all(s["kind"] == "SpanKind.CLIENT" and s["attributes"]["db.system"] == "postgresql" for s in children)


def test_without_or_with_a_bad_traceparent_a_request_starts_its_own_trace(traced_pair):
    (a, _), (file_a, _) = traced_pair
    with a.client() as c:
        for headers in ({}, {"traceparent": "garbage"}, {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"}):
            res = c.get("/health/livez", headers=headers)
            assert res.status_code == 200
            version, trace_id, span_id, flags = res.headers["traceparent"].split("-")
            assert version == "00" and len(trace_id) == 32 and trace_id != "0" * 32
            spans = spans_of(file_a, trace_id, want=1)
            assert [s["parent_id"] for s in spans] == [None]


def test_an_unknown_exporter_is_refused_at_start(tmp_db, capfd):
    reason = refused_at_start(capfd, "--db", str(tmp_db), "--trace-exporter", "jaeger")
    assert reason == "unknown trace exporter 'jaeger' (console, file:PATH or otlp)"
