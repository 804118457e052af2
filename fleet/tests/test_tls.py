"""HTTPS with a certificate, and mTLS with one client CA per tenant (test certificates made here)."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from fleet_devtools.certs import issue, make_ca
from fleet_devtools.fleet_harness import Device, FleetServer, admin_json, assert_error, new_id, refused_at_start, registration_body


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    server_ca, acme_ca, globex_ca, rogue_ca = (make_ca(d, n) for n in ("server-ca", "acme-ca", "globex-ca", "rogue-ca"))
    return {"dir": d, "server_ca": server_ca, "server": issue(server_ca, d, "fleet-server", server=True),
            "acme_ca": acme_ca, "globex_ca": globex_ca,
            "acme_client": issue(acme_ca, d, "acme-device", server=False),
            "globex_client": issue(globex_ca, d, "globex-device", server=False),
            "rogue_client": issue(rogue_ca, d, "rogue-device", server=False)}


def client_ctx(pki, cert=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["server_ca"].cert_pem))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert_pem), str(cert.key_pem))
    return ctx


def tls_flags(pki, *mtls: str) -> list[str]:
    return ["--tls-cert", str(pki["server"].cert_pem), "--tls-key", str(pki["server"].key_pem), *mtls]


def handshake_and_get(port: int, ctx: ssl.SSLContext) -> bytes:
    """A raw TLS connection and one request; b"" when the server refused the handshake (it closes the
    connection, so no HTTP reply ever comes; under TLS 1.3 the client learns that on its first read)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /health/livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return tls.recv(4096)
    except (ssl.SSLError, ConnectionError):
        return b""


def test_https_with_a_certificate(tmp_db, pki):
    srv = FleetServer(tmp_db, *tls_flags(pki), tls=client_ctx(pki)).start()
    try:
        with srv.client() as c:
            assert c.get("/health/livez").json() == {"status": "ok"}
            assert c.get("/mtls/info").json() == {"tls": True, "client_cert": "off", "presented": False}
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # a client trusting another CA
            httpx.get(srv.url + "/health/livez", verify=ssl.create_default_context(cafile=str(pki["acme_ca"].cert_pem)))
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no HTTP answer
            httpx.get(srv.url.replace("https", "http") + "/health/livez", timeout=1)
    finally:
        assert srv.stop() == 0


@pytest.fixture(scope="module")
def enforced(tmp_path_factory, pki):
    db = tmp_path_factory.mktemp("mtls") / "fleet.sqlite"
    flags = tls_flags(pki, "--mtls-ca", f"acme={pki['acme_ca'].cert_pem}",
                      "--mtls-ca", f"globex={pki['globex_ca'].cert_pem}", "--mtls-enforce")
    srv = FleetServer(db, *flags, tls=client_ctx(pki, pki["acme_client"])).start()
    yield srv
    assert srv.stop() == 0


def test_mtls_refuses_a_client_without_a_certificate_at_the_handshake(enforced, pki):
    assert handshake_and_get(enforced.port, client_ctx(pki)) == b""
    assert handshake_and_get(enforced.port, client_ctx(pki, pki["rogue_client"])) == b""  # from no tenant's CA
    assert handshake_and_get(enforced.port, client_ctx(pki, pki["acme_client"])).startswith(b"HTTP/1.1 200")
    with pytest.raises(httpx.HTTPError):  # and a real client without a certificate gets no answer either
        httpx.get(enforced.url + "/health/livez", verify=client_ctx(pki), timeout=5)


def test_mtls_info_and_a_device_bound_to_its_tenants_certificate(enforced, pki):
    with enforced.client() as c:
        info = c.get("/mtls/info", params={"tenant": "acme"}).json()
        assert info["client_cert"] == "required" and info["presented"] is True
        assert info["certificate_tenant"] == "acme"
        assert info["ca"]["sha256"] == __import__("hashlib").sha256(pki["acme_ca"].cert_der).hexdigest()
        assert_error(c.get("/mtls/info", params={"tenant": "nobody"}), 404, "nobody")
    device = Device(enforced)  # tenant acme, registered over the acme certificate
    hb = {"uptime_s": 1, "free_heap": 1, "health": {}}
    with device.client() as c:
        assert c.post(f"/api/devices/{device.id}/heartbeat", json=hb).status_code == 200
    wrong = httpx.Client(base_url=enforced.url, verify=client_ctx(pki, pki["globex_client"]),
                         headers={"Authorization": f"Bearer {device.token}"})
    with wrong:  # an acme device token over a globex certificate
        assert_error(wrong.post(f"/api/devices/{device.id}/heartbeat", json=hb), 403, "another tenant")


def test_mtls_not_enforced_lets_a_client_without_a_certificate_in(tmp_db, pki):
    srv = FleetServer(tmp_db, *tls_flags(pki, "--mtls-ca", f"acme={pki['acme_ca'].cert_pem}"),
                      tls=client_ctx(pki)).start()
    try:
        with srv.client() as c:
            assert c.get("/mtls/info").json() == {"tls": True, "client_cert": "optional", "presented": False}
            assert Device(srv).token
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("flags, reason", [
    (["--mtls-enforce"], "need --tls-cert"),
    (["--tls-cert", "/nonexistent.pem"], "/nonexistent.pem"),
    ("enforce-without-ca", "needs at least one --mtls-ca"),
    ("leaf-as-ca", "is not a CA certificate"),
    ("bad-mtls-arg", "TENANT=FILE"),
])
def test_bad_tls_configuration_is_refused_at_start(tmp_db, pki, flags, reason, capfd):
    if flags == "enforce-without-ca":
        flags = tls_flags(pki, "--mtls-enforce")
    elif flags == "leaf-as-ca":
        flags = tls_flags(pki, "--mtls-ca", f"acme={pki['acme_client'].cert_pem}")
    elif flags == "bad-mtls-arg":
        flags = tls_flags(pki, "--mtls-ca", "acme")
    assert reason in refused_at_start(capfd, "--db", str(tmp_db), *flags)


def test_over_https_a_device_that_asks_is_sent_its_tenants_api_key(tmp_db, pki):
    srv = FleetServer(tmp_db, *tls_flags(pki), tls=client_ctx(pki)).start()
    try:
        prov = admin_json(srv.db, "provision", "--id", new_id(), "--tenant", "default", "--namespace", "default",
                          "--role", "relays")
        with srv.client() as c:
            nonce = c.post(f"/api/devices/{prov['device_id']}/challenge", json={}).json()["nonce"]
            reg = c.post("/api/devices", json=registration_body(prov, nonce, want_api_key=True))
        assert reg.status_code == 200 and reg.json()["api_key"] == prov["api_key"]
    finally:
        assert srv.stop() == 0
