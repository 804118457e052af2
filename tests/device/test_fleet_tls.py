"""The unix-build device's fleet link over TLS against the real fleet-server with mTLS enforced:
it verifies the server against the CA named in device.json, presents its client certificate,
and refuses to start the link with a server it cannot verify unless
fleet_tls_insecure_skip_verify is set. Certificates are made here with `cryptography`."""
import json
import ssl

import httpx
import pytest

from fleet_devtools.certs import issue, make_ca
from fleet_devtools.fleet_harness import FleetServer, admin_json
from harness.role_device import RoleDevice
from harness.waiting import wait_for

pytestmark = pytest.mark.unix

TENANT, NAMESPACE = "acme", "plant1"


class TlsFleet:
    def __init__(self, tmp):
        self.tmp = tmp
        self.server_ca = make_ca(tmp, "server-ca")
        self.other_ca = make_ca(tmp, "other-ca")
        self.acme_ca = make_ca(tmp, "acme-ca")
        self.server = issue(self.server_ca, tmp, "fleet-server", server=True)
        self.device_cert = issue(self.acme_ca, tmp, "acme-device", server=False)
        self.db = tmp / "fleet.sqlite"
        (tmp / "fleet.json").write_text(json.dumps({"heartbeat_s": 5}))
        # the harness's own readiness check is a client like any other: mTLS is enforced
        ctx = ssl.create_default_context(cafile=str(self.server_ca.cert_pem))
        ctx.load_cert_chain(str(self.device_cert.cert_pem), str(self.device_cert.key_pem))
        self.fleet = FleetServer(
            self.db, "--config", str(tmp / "fleet.json"), "--tls-cert", str(self.server.cert_pem),
            "--tls-key", str(self.server.key_pem), "--mtls-ca", "acme=%s" % self.acme_ca.cert_pem,
            "--mtls-enforce", tls=ctx, log_dir=tmp, log_name="fleet-server.log").start()
        self.port = self.fleet.port
        self.url = "https://localhost:%d/api" % self.port  # the server certificate names localhost

    def admin(self, *args):
        return admin_json(self.db, *args)

    def device(self, name, **tls_settings):
        creds = self.admin("provision", "--id", name, "--tenant", TENANT, "--namespace", NAMESPACE,
                           "--role", "relays")
        d = RoleDevice(self.tmp, "relays", device_id=name, device_key=creds["device_key"],
                       api_key=creds["api_key"], tenant=TENANT, namespace=NAMESPACE,
                       service_discovery_url=self.url + "/devices",
                       config_poll_s=1, **tls_settings)
        d.device_id = name
        return d.start(timeout=20)

    def heartbeat(self, device_id):
        return self.admin("heartbeat", "--id", device_id)["heartbeat"]

    def stop(self):
        self.fleet.stop()


def registered_check(device):
    return httpx.get(device.url + "/health/readyz", timeout=5).json()["checks"]["registered"]


def tls_check(device):
    return httpx.get(device.url + "/health/readyz", timeout=5).json()["checks"]["fleet_tls"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = TlsFleet(tmp_path_factory.mktemp("tls-fleet"))
    yield f
    f.stop()


@pytest.fixture(scope="module")
def devices(fleet):
    """Five devices at once, one per case, so their registration attempts overlap."""
    client = {"fleet_client_cert_file": str(fleet.device_cert.cert_pem),
              "fleet_client_key_file": str(fleet.device_cert.key_pem)}
    started = {}
    try:
        started["verified"] = fleet.device("tls-verified", fleet_ca_file=str(fleet.server_ca.cert_pem), **client)
        started["no_ca"] = fleet.device("tls-no-ca", **client)
        started["wrong_ca"] = fleet.device("tls-wrong-ca", fleet_ca_file=str(fleet.other_ca.cert_pem), **client)
        started["insecure"] = fleet.device("tls-insecure", fleet_tls_insecure_skip_verify=True, **client)
        started["no_client_cert"] = fleet.device("tls-no-cert", fleet_ca_file=str(fleet.server_ca.cert_pem))
        yield started
    finally:
        for d in started.values():
            d.stop()


def test_device_verifies_the_server_and_registers_over_mtls(fleet, devices):
    hb = wait_for("heartbeat over mTLS", lambda: fleet.heartbeat("tls-verified"), timeout=20)
    assert hb["free_heap"] > 0
    assert wait_for("registered", lambda: registered_check(devices["verified"])["ok"], timeout=20)
    assert tls_check(devices["verified"]) == {"required": False, "ok": True,
                                              "detail": "server verified, client certificate"}


def test_https_without_a_ca_refuses_to_start_the_fleet_link(fleet, devices):
    check = registered_check(devices["no_ca"])
    assert check["ok"] is False
    assert check["detail"].startswith("fleet link refused: https fleet server but no fleet_ca_file")
    assert devices["no_ca"].metric("iot_registration_attempts_total") == 0
    assert tls_check(devices["no_ca"])["ok"] is False
    assert fleet.admin("state-get", "--id", "tls-no-ca")["version"] == 0
    assert fleet.heartbeat("tls-no-ca") is None


def test_a_server_the_ca_does_not_vouch_for_is_not_registered_with(fleet, devices):
    def failed():
        c = registered_check(devices["wrong_ca"])
        return c["detail"] if c["detail"] != "not yet" else None
    detail = wait_for("a failed attempt", failed, timeout=20)
    assert registered_check(devices["wrong_ca"])["ok"] is False and "refused" not in detail
    assert fleet.heartbeat("tls-wrong-ca") is None


def test_the_insecure_option_skips_verification_and_says_so(fleet, devices):
    wait_for("heartbeat without verification", lambda: fleet.heartbeat("tls-insecure"), timeout=20)
    assert tls_check(devices["insecure"])["detail"] == \
        "server certificate NOT verified (fleet_tls_insecure_skip_verify), client certificate"


def test_without_a_client_certificate_the_enforcing_server_refuses_the_device(fleet, devices):
    wait_for("a failed attempt", lambda: devices["no_client_cert"].metric("iot_registration_attempts_total") >= 1, timeout=20)
    wait_for("the failure shown", lambda: registered_check(devices["no_client_cert"])["detail"] != "not yet", timeout=20)
    assert registered_check(devices["no_client_cert"])["ok"] is False
    assert fleet.heartbeat("tls-no-cert") is None
