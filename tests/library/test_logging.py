"""Logger: masked fields never reach flash, rotation keeps the configured count; Audit:
verification fails once any line is edited. Metrics parse with prometheus_client."""
import hashlib
import json

import pytest

from prometheus_client.parser import text_string_to_metric_families

from harness.run import run_unix
from harness.scripts import device_script

pytestmark = pytest.mark.unix

SECRETS = ("hunter2-password", "tok-SECRET-42", "nested-secret-99", "listed-secret-7")


def test_masked_fields_never_reach_any_log_file(tmp_path):
    run_unix("""
from iotlib.logger import Logger
from iotlib.audit import Audit
log = Logger(mask_fields=["token", "password"], max_bytes=600, keep=2, ring_bytes=512)
for i in range(20):
    log.info("login", user="ann", password="hunter2-password", i=i,
            request={"headers": {"token": "tok-SECRET-42"},
                     "auth": {"password": "nested-secret-99"}},
            items=[{"token": "listed-secret-7"}])
log.log("WARNING", "plain", fields={"token": {"inner": "tok-SECRET-42"}})
log.flush()
Audit(mask_fields=["token", "password"]).record("auth_denied", token="tok-SECRET-42")
""", cwd=str(tmp_path))
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert "app.log" in files and "app.log.1" in files and "audit.log" in files
    text = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    for secret in SECRETS:
        assert secret not in text
    line = json.loads((tmp_path / "logs" / "app.log").read_text().splitlines()[-1])
    assert line["level"] == "WARNING" and line["token"] == "***"
    rec = json.loads((tmp_path / "logs" / "app.log.1").read_text().splitlines()[0])
    assert rec["password"] == "***" and rec["request.headers.token"] == "***"
    assert rec["request.auth.password"] == "***" and rec["items.0.token"] == "***"
    assert rec["user"] == "ann" and rec["msg"] == "login"


def test_rotation_keeps_configured_count_and_batches(tmp_path):
    out = run_unix("""
import os
from iotlib.logger import Logger
log = Logger(max_bytes=1000, keep=3, ring_bytes=1024, level="DEBUG")
log.debug("first")
print(log.files())  # still in RAM: nothing written yet
for i in range(300):
    log.info("line", n=i)
log.log("DEBUG", "x" * 1000)  # longer than a line buffer: truncated, not lost
log.flush()
print(log.files(), log.dropped)
""", cwd=str(tmp_path)).splitlines()
    assert out[0] == "[]"
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2", "app.log.3"]
    for p in (tmp_path / "logs").iterdir():
        assert p.stat().st_size <= 1000
        for line in p.read_text().splitlines():
            json.loads(line)
    last = json.loads((tmp_path / "logs" / "app.log").read_text().splitlines()[-1])
    assert last["truncated"] is True and out[1].endswith(" 0")


def test_audit_verification_fails_after_a_line_is_edited(tmp_path):
    code = """
from iotlib.audit import Audit
a = Audit()
print(a.verify())
"""
    run_unix("""
from iotlib.audit import Audit
a = Audit()
a.record("auth_denied", reason="signature", sub="mallory")
a.record("config_applied", version=3)
a.record("relay_command", relay="pump", state=True, sub="alice")
a.record("update_staged", version="1.2.0")
print(a.verify())
""", cwd=str(tmp_path))
    assert run_unix(code, cwd=str(tmp_path)).strip() == "(True, '4 lines')"
    path = tmp_path / "logs" / "audit.log"
    original = path.read_text()
    path.write_text(original.replace('"relay":"pump"', '"relay":"heat"'))
    assert "line 4: chain broken" in run_unix(code, cwd=str(tmp_path))
    path.write_text(original.replace('"version":"1.2.0"', '"version":"6.6.6"'))
    assert "(False, 'last line does not match the head')" in run_unix(code, cwd=str(tmp_path))
    path.write_text("".join(original.splitlines(True)[1:]))  # first line deleted
    assert "(False, 'line 1: chain broken')" in run_unix(code, cwd=str(tmp_path))
    path.write_text(original)
    assert run_unix(code, cwd=str(tmp_path)).strip() == "(True, '4 lines')"


def test_metrics_render_parses_with_prometheus_client_and_health(tmp_path):
    out = run_unix("\n" + device_script(__file__, "metrics_and_health.py"), cwd=str(tmp_path))
    first, network_check, text = out.split("\n", 2)
    (ready, checks), (live, live_checks) = json.loads(first)
    assert ready is False and checks["network"]["ok"] is False and checks["config"]["ok"] is False
    assert checks["device_key"]["ok"] is True
    assert live is True and list(live_checks) == ["watchdog"]
    assert json.loads(network_check)["ok"] is True
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("iot_network_reconnects", "iot_network_up", "iot_wifi_rssi_dbm",
                 "iot_auth_failures", "iot_config_version", "iot_log_lines_dropped",
                 "iot_heap_free_bytes", "iot_uptime_seconds", "iot_http_request_seconds",
                 "iot_odd"):
        assert name in families, name
    failures = families["iot_auth_failures"].samples
    assert failures[0].labels == {"reason": "malformed"} and failures[0].value == 1
    assert families["iot_heap_free_bytes"].samples[0].value > 0
    assert families["iot_wifi_rssi_dbm"].samples[0].value == -55
    hist = {(s.name, s.labels.get("le")): s.value
            for s in families["iot_http_request_seconds"].samples}
    assert hist[("iot_http_request_seconds_bucket", "+Inf")] == 1
    assert hist[("iot_http_request_seconds_bucket", "0.01")] == 0
    assert hist[("iot_http_request_seconds_bucket", "0.05")] == 1
    assert families["iot_odd"].samples[0].labels == {"l": 'a"b\\c\nd'}


def test_background_flush_start_stop_and_age_retention(tmp_path):
    out = run_unix("\n" + device_script(__file__, "logger_background_flush.py"), cwd=str(tmp_path)).splitlines()
    assert out[0] == "0" and out[1] == "1 1"
    assert out[2] == "6"  # live file + keep=5
    assert out[3] == "['logs/app.log'] True"


def test_audit_chain_holds_across_rotation_and_restarts_with_files_kept_open(tmp_path):
    # The trail keeps audit.log and its head file open between events: a later process
    # (a reboot) continues the same chain, and rotation keeps it verifiable.
    record = """
from iotlib.audit import Audit
a = Audit(max_bytes=900, mask_fields=["token"])
for i in range(%d):
    a.record("relay_command", relay="pump", n=i, req={"token": "tok-SECRET-42", "ip": "10.0.0.%%d" %% i})
print(a.verify())
"""
    assert run_unix(record % 6, cwd=str(tmp_path)).strip() == "(True, '6 lines')"
    out = run_unix(record % 9, cwd=str(tmp_path)).strip()
    assert out.startswith("(True, ") and (tmp_path / "logs" / "audit.log.1").exists()
    text = (tmp_path / "logs" / "audit.log").read_text()
    assert "tok-SECRET-42" not in text and '"req.token":"***"' in text
    head = (tmp_path / "logs" / "audit.log.head").read_text()  # overwritten in place
    last = (tmp_path / "logs" / "audit.log").read_bytes().splitlines(True)[-1]
    assert head == hashlib.sha256(last).hexdigest()
    lines = [json.loads(l) for l in text.splitlines()]
    assert lines[-1]["n"] == 8 and lines[-1]["req.ip"] == "10.0.0.8"


def test_a_caller_that_yields_never_writes_flash_itself_and_every_line_arrives(tmp_path):
    # The ring wakes the writer task at half full; a caller yielding between lines (as any
    # request handler does) leaves the writes to it. One that never yields fills the ring and
    # writes it out itself (counted), and nothing is lost either way.
    out = run_unix("\n" + device_script(__file__, "logger_yielding_caller.py"), cwd=str(tmp_path))
    yielding, busy, lines, dropped = map(int, out.split())
    assert yielding == 0 and busy > 10 and lines == 400 and dropped == 0
    records = [json.loads(l) for p in sorted((tmp_path / "logs").iterdir(), reverse=True)
               for l in p.read_text().splitlines()]
    ns = [(r["msg"], r["n"]) for r in records][-400:]
    assert ns == [("yielding", i) for i in range(200)] + [("busy", i) for i in range(200)]


def test_the_writer_syncs_every_flush_ms_while_the_ring_keeps_waking_it(tmp_path):
    # steady logging wakes the writer far more often than flush_ms; the file must still be
    # synced every flush_ms (a power cut loses at most that much), not only at rotation
    out = run_unix("\n" + device_script(__file__, "logger_sync_every_flush_ms.py"), cwd=str(tmp_path))
    syncs, caller_writes = map(int, out.split())
    assert syncs >= 3 and caller_writes == 0
