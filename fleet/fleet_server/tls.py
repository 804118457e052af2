"""HTTPS for fleet-server and optional mTLS with one client CA per tenant.

With a certificate the server speaks TLS only. With client CAs configured it asks every client for
a certificate issued by one of them: when enforcement is on a client without one is refused in the
handshake; when it is off such a client still gets in and relies on its token alone. A device that
does present a certificate must present one from its own tenant's CA: the connection's issuing
tenant is remembered per connection and compared with the device token's tenant.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from .api_error import ApiError


@dataclass
class TenantCA:
    tenant: str
    cert: x509.Certificate

    def info(self) -> dict:
        return {"tenant": self.tenant, "subject": self.cert.subject.rfc4514_string(),
                "sha256": hashlib.sha256(self.cert.public_bytes(Encoding.DER)).hexdigest(),
                "not_after": self.cert.not_valid_after_utc.isoformat()}


def load_tenant_cas(paths: dict[str, str]) -> list[TenantCA]:
    cas = []
    for tenant, path in sorted(paths.items()):
        try:
            with open(path, "rb") as fh:
                cert = x509.load_pem_x509_certificate(fh.read())
        except (OSError, ValueError) as exc:
            raise ValueError(f"client CA for tenant {tenant!r} ({path}): {exc}") from exc
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value \
            if any(e.oid == x509.oid.ExtensionOID.BASIC_CONSTRAINTS for e in cert.extensions) else None
        if basic is None or not basic.ca:
            raise ValueError(f"client CA for tenant {tenant!r} ({path}) is not a CA certificate")
        cas.append(TenantCA(tenant, cert))
    return cas


@dataclass
class TlsSetup:
    """What the server needs at start-up (the SSL context) and per request (whose certificate)."""

    cert_file: str
    key_file: str
    tenant_cas: list[TenantCA] = field(default_factory=list)
    enforce: bool = False
    # client (host, port) -> DER of the certificate that connection presented
    peers: dict[tuple, bytes] = field(default_factory=dict)

    @property
    def client_cert_mode(self) -> str:
        if not self.tenant_cas:
            return "off"
        return "required" if self.enforce else "optional"

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"TLS certificate/key ({self.cert_file}, {self.key_file}): {exc}") from exc
        if self.tenant_cas:
            for ca in self.tenant_cas:
                ctx.load_verify_locations(cadata=ca.cert.public_bytes(Encoding.DER))
            ctx.verify_mode = ssl.CERT_REQUIRED if self.enforce else ssl.CERT_OPTIONAL
        return ctx

    def tenant_of(self, client) -> str | None:
        """The tenant whose CA issued the certificate this client's connection presented, if any."""
        der = self.peers.get(tuple(client)) if client else None
        if der is None:
            return None
        cert = x509.load_der_x509_certificate(der)
        for ca in self.tenant_cas:
            if cert.issuer == ca.cert.subject:
                try:
                    cert.verify_directly_issued_by(ca.cert)
                    return ca.tenant
                except (ValueError, TypeError, InvalidSignature):  # same name, another key: not this tenant
                    continue
        return None

    def check_device(self, client, tenant: str) -> None:
        """A device presenting a certificate must present its own tenant's."""
        cert_tenant = self.tenant_of(client)
        if cert_tenant is not None and cert_tenant != tenant:
            raise ApiError(403, "client certificate was issued for another tenant")

    def info(self, client, tenant: str | None) -> dict:
        out = {"tls": True, "client_cert": self.client_cert_mode,
               "presented": self.peers.get(tuple(client)) is not None if client else False,
               "certificate_tenant": self.tenant_of(client)}
        if tenant is not None:
            match = [ca.info() for ca in self.tenant_cas if ca.tenant == tenant]
            if not match:
                raise ApiError(404, f"no client CA configured for tenant {tenant!r}")
            out["ca"] = match[0]
        return out


def peer_cert_protocol(base: type, tls: TlsSetup) -> type:
    """uvicorn's HTTP protocol class, also remembering each TLS connection's client certificate."""

    class PeerCertProtocol(base):
        def connection_made(self, transport):
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if der and self.client:
                tls.peers[tuple(self.client)] = der

        def connection_lost(self, exc):
            if self.client:
                tls.peers.pop(tuple(self.client), None)
            super().connection_lost(exc)

    return PeerCertProtocol


def build_tls_setup(cert_file: str | None, key_file: str | None, client_cas: dict[str, str],
                    enforce: bool) -> TlsSetup | None:
    """None for plain HTTP; a clear ValueError for a combination that cannot work."""
    if not cert_file:
        if key_file or client_cas or enforce:
            raise ValueError("--tls-key, --mtls-ca and --mtls-enforce need --tls-cert")
        return None
    if enforce and not client_cas:
        raise ValueError("--mtls-enforce needs at least one --mtls-ca TENANT=FILE")
    setup = TlsSetup(cert_file, key_file or cert_file, load_tenant_cas(client_cas), enforce)
    setup.ssl_context()  # fail at start-up, not at the first handshake
    return setup
