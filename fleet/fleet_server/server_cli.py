"""`fleet-server`: run the fleet services (uvicorn; SIGTERM/SIGINT shut down gracefully)."""

from __future__ import annotations

import argparse
import os
import socket
import logging
import signal
import sys

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .app import create_app
from .json_logging import setup_json_logging
from .secret import load_server_secret
from .settings import ALL_COMPONENTS, load_settings
from .tls import build_tls_setup, peer_cert_protocol
from .storage import SchemaTooNew, open_storage, redact_target

log = logging.getLogger("fleet.server")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fleet-server", description=__doc__)
    p.add_argument("--db", default=os.environ.get("FLEET_DB"), required="FLEET_DB" not in os.environ,
                   help="SQLite file (created if absent) or postgresql://user@host/db URL (default: $FLEET_DB, "
                        "which keeps a password off the command line)")
    p.add_argument("--secrets", default=os.environ.get("FLEET_SECRETS"),
                   help="master keys sealing secrets at rest: file:PATH or env (FLEET_SECRETS_KEYS); "
                        "default $FLEET_SECRETS, else a keyring file beside a SQLite database")
    p.add_argument("--db-pool-size", type=int, default=4, help="PostgreSQL connections this process may open")
    p.add_argument("--replica-id", default=f"{socket.gethostname()}:{os.getpid()}",
                   help="this process's name in background-job leases (default host:pid)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--config", help="JSON settings file (enabled_components, device_token_ttl_s, ...)")
    p.add_argument("--secret-file", help="device-token secret; created if absent (default: kept in the database)")
    p.add_argument("--components", help=f"comma-separated enabled components, overrides the config file "
                                         f"(any of {','.join(ALL_COMPONENTS)})")
    p.add_argument("--device-token-ttl", type=int, help="device token lifetime in seconds")
    p.add_argument("--nonce-ttl", type=int, help="registration nonce lifetime in seconds")
    p.add_argument("--public-url", help="base URL handed to devices instead of the request's host")
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert (default: in the same file)")
    p.add_argument("--mtls-ca", action="append", default=[], metavar="TENANT=FILE",
                   help="ask clients for a certificate from this tenant's CA (repeat per tenant)")
    p.add_argument("--mtls-enforce", action="store_true",
                   help="refuse, in the TLS handshake, any client without a certificate from a tenant CA")
    p.add_argument("--trace-exporter", default=os.environ.get("FLEET_TRACE_EXPORTER"),
                   help="OpenTelemetry spans: console, file:PATH (JSON lines) or otlp; default off")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_json_logging(args.log_level.upper())
    try:
        settings = load_settings(args.config)
        overrides = {}
        if args.components is not None:
            names = [n.strip() for n in args.components.split(",") if n.strip()]
            unknown = set(names) - set(ALL_COMPONENTS)
            if unknown:
                raise ValueError(f"unknown components: {sorted(unknown)}")
            overrides["enabled_components"] = {c: c in names for c in ALL_COMPONENTS}
        for flag, key in (("device_token_ttl", "device_token_ttl_s"), ("nonce_ttl", "nonce_ttl_s"),
                          ("public_url", "public_url"), ("tls_cert", "tls_cert_file"), ("tls_key", "tls_key_file")):
            if getattr(args, flag) is not None:
                overrides[key] = getattr(args, flag)
        if args.mtls_ca:
            overrides["mtls_client_cas"] = dict(_tenant_file(v) for v in args.mtls_ca)
        if args.mtls_enforce:
            overrides["mtls_enforce"] = True
        settings = settings.model_validate({**settings.model_dump(), **overrides})
        tracer_provider = None
        if args.trace_exporter:
            try:  # OpenTelemetry is imported only when tracing is on
                from .tracing import make_provider
            except ImportError as exc:
                raise ValueError(f"--trace-exporter needs pip install 'fleet-server[tracing]' ({exc})")
            tracer_provider = make_provider(args.trace_exporter, args.replica_id)
        tls = build_tls_setup(settings.tls_cert_file, settings.tls_key_file, settings.mtls_client_cas,
                              settings.mtls_enforce)
        storage = open_storage(args.db, pool_size=args.db_pool_size, secrets=args.secrets,
                               actor=f"fleet-server:{args.replica_id}")
        secret = load_server_secret(storage, args.secret_file)
    except (OSError, ValueError, SchemaTooNew) as exc:
        log.error("cannot start", extra={"reason": str(exc)})
        return 2

    app = create_app(settings, storage, secret, replica_id=args.replica_id, tls=tls,
                     tracer_provider=tracer_provider)
    tls_options = {} if tls is None else {
        "ssl_context_factory": lambda _config, _default: tls.ssl_context(),
        "http": peer_cert_protocol(AutoHTTPProtocol, tls)}
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=5, **tls_options)
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT while serving (stop accepting, finish in-flight requests, run the
    # lifespan exit) and then re-raises the signal to the handler that was there before it: make that
    # handler a clean exit so a graceful stop ends with status 0 rather than death by signal
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    log.info("listening", extra={"host": args.host, "port": args.port, "db": redact_target(args.db),
                               "replica": args.replica_id,
                               "tls": tls.client_cert_mode if tls else "plain"})
    try:
        server.run()
    except SystemExit as exc:
        if exc.code != 0:
            raise
    log.info("exited")
    return 0 if server.started else 1


def _tenant_file(value: str) -> tuple[str, str]:
    tenant, sep, path = value.partition("=")
    if not sep or not tenant or not path:
        raise ValueError(f"--mtls-ca wants TENANT=FILE, got {value!r}")
    return tenant, path


def _exit_cleanly(signum, _frame) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
