"""Liveness, readiness, Prometheus metrics and the error shape of unknown routes."""

from prometheus_client.parser import text_string_to_metric_families

from fleet_devtools.fleet_harness import assert_error


def test_livez_and_readyz(server):
    with server.client() as c:
        assert c.get("/health/livez").json() == {"status": "ok"}
        res = c.get("/health/readyz")
    assert res.status_code == 200
    assert res.json() == {"status": "ok", "checks": {name: "ok" for name in
                                                     ("discovery", "config", "state", "alarms", "updates",
                                                      "admin", "console")}}


def test_metrics_count_requests_per_route_and_status(server, device):
    with device.client() as c:
        c.get(f"/api/devices/{device.id}/config")
        c.get("/api/devices/someone-else/config")
        res = c.get("/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    samples = {(s.name, s.labels.get("route"), s.labels.get("status")): s.value
               for fam in text_string_to_metric_families(res.text) for s in fam.samples}
    route = "/api/devices/{device_id}/config"
    assert samples[("fleet_http_requests_total", route, "200")] >= 1
    assert samples[("fleet_http_requests_total", route, "403")] >= 1
    assert samples[("fleet_http_request_duration_seconds_count", route, "200")] >= 1


def test_unknown_route_is_json_404(server):
    with server.client() as c:
        assert_error(c.get("/api/nothing-here"), 404)
        assert_error(c.delete("/health/livez"), 405)
