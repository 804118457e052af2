"""Publishing artefacts with the CLI; the update check; downloads with Range."""

import hashlib
import json

import pytest

from fleet_devtools.fleet_harness import Device, api_token, assert_error, new_id, run_admin

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes


def _publish(server, tmp_path, tenant, version, data=PAYLOAD, **manifest_overrides):
    art = tmp_path / f"a-{version}.bin"
    art.write_bytes(data)
    manifest = {"kind": "bundle", "version": version, "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "signature": "c2lnbmF0dXJl"}
    manifest.update(manifest_overrides)
    mpath = tmp_path / f"m-{version}.json"
    mpath.write_text(json.dumps(manifest))
    return run_admin(server.db, "publish", "--tenant", tenant, "--file", str(art), "--manifest", str(mpath))


@pytest.fixture
def published(server, tmp_path):
    dev = Device(server, tenant=new_id("updates"))
    res = _publish(server, tmp_path, dev.tenant, "1.2.0")
    assert res.returncode == 0, res.stderr
    return dev, json.loads(res.stdout)


def test_no_update_is_204(server):
    dev = Device(server, tenant="quiet-co")
    with dev.client() as c:
        res = c.get(f"/api/devices/{dev.id}/update", params={"version": "1.0.0"})
    assert res.status_code == 204 and res.content == b""


def test_update_manifest_for_older_device(server, published):
    dev, pub = published
    with dev.client() as c:
        res = c.get(f"/api/devices/{dev.id}/update", params={"version": "1.1.9"})
        assert res.status_code == 200
        assert res.json() == {"kind": "bundle", "version": "1.2.0", "size": len(PAYLOAD),
                              "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "signature": "c2lnbmF0dXJl",
                              "url": f"{server.url}/api/artifacts/{pub['name']}"}
        assert c.get(f"/api/devices/{dev.id}/update", params={"version": "1.2.0"}).status_code == 204
        assert c.get(f"/api/devices/{dev.id}/update", params={"version": "1.10.0"}).status_code == 204
        assert_error(c.get(f"/api/devices/{dev.id}/update", params={"version": "banana"}), 400, "version")
        assert_error(c.get(f"/api/devices/{dev.id}/update"), 400, "query.version")


def test_newest_applicable_manifest_wins(server, tmp_path):
    dev = Device(server, tenant="multi-co", role="sensors")
    assert _publish(server, tmp_path, "multi-co", "2.0.0", kind="image", min_version="1.5").returncode == 0
    assert _publish(server, tmp_path, "multi-co", "1.4.0", data=b"x" * 10).returncode == 0
    assert _publish(server, tmp_path, "multi-co", "1.9.0", data=b"y" * 10, role="relays").returncode == 0
    with dev.client() as c:
        # below min_version of 2.0.0, and 1.9.0 is for relays: 1.4.0 is the one that applies
        assert c.get(f"/api/devices/{dev.id}/update", params={"version": "1.0"}).json()["version"] == "1.4.0"
        m = c.get(f"/api/devices/{dev.id}/update", params={"version": "1.5.0"}).json()
        assert m["version"] == "2.0.0" and m["kind"] == "image" and m["min_version"] == "1.5"


def test_publish_refuses_mismatched_manifest(server, tmp_path):
    Device(server, tenant="strict-co")
    for overrides, reason in (({"sha256": "0" * 64}, "sha256"), ({"size": 1}, "size"), ({"kind": "zip"}, "kind")):
        res = _publish(server, tmp_path, "strict-co", "3.0.0", **overrides)
        assert res.returncode == 2 and reason in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert _publish(server, tmp_path, "nobody-co", "3.0.0").returncode == 2


def test_artifact_download_and_ranges(server, published):
    dev, pub = published
    url = f"/api/artifacts/{pub['name']}"
    with dev.client() as c:
        full = c.get(url)
        assert full.status_code == 200 and full.content == PAYLOAD and full.headers["accept-ranges"] == "bytes"
        part = c.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == PAYLOAD[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(PAYLOAD)}"
        tail = c.get(url, headers={"Range": "bytes=10000-"})
        assert tail.status_code == 206 and tail.content == PAYLOAD[10000:]
        suffix = c.get(url, headers={"Range": "bytes=-40"})
        assert suffix.status_code == 206 and suffix.content == PAYLOAD[-40:]
        clipped = c.get(url, headers={"Range": "bytes=10200-99999"})
        assert clipped.status_code == 206 and clipped.content == PAYLOAD[10200:]
        bad = c.get(url, headers={"Range": f"bytes={len(PAYLOAD)}-"})
        assert_error(bad, 416)
        assert bad.headers["content-range"] == f"bytes */{len(PAYLOAD)}"
        assert_error(c.get("/api/artifacts/missing"), 404)


def test_artifact_of_another_tenant_is_403(server, published):
    dev, pub = published
    stranger = Device(server, tenant="stranger-co")
    with stranger.client() as c:
        assert_error(c.get(f"/api/artifacts/{pub['name']}"), 403)
    with server.client() as c:
        assert_error(c.get(f"/api/artifacts/{pub['name']}"), 401)
    admin = api_token(server.db, dev.tenant, dev.namespace)
    with server.client(admin) as c:
        assert c.get(f"/api/artifacts/{pub['name']}", headers={"Range": "bytes=0-0"}).content == PAYLOAD[:1]


def test_republishing_the_same_artifact_is_refused(server, published, tmp_path):
    res = _publish(server, tmp_path, published[0].tenant, "1.2.0")
    assert res.returncode == 2 and "already published" in res.stderr
