#!/usr/bin/env python3
"""Heap cost of one TLS session on the emulated RP2040 (rp2040py, our RELAYS image), printed.

There is no network inside the emulator, so the device's TLS client (iotlib.http_client's
tls_context: server verified against a CA, P-256 certificates made here with `cryptography`)
does its handshake with a TLS server in the same interpreter over an in-memory pipe. Printed:
the client's heap for the established session once the server end is freed (what a device
holds per fleet connection), both ends together at the end of the handshake, the same with a
client certificate (mTLS), and what is left after close (0 means nothing leaks).

    .venv/bin/python ci/bench/tls_session_heap.py [--image build/rp2/PICO_W_IOT-RELAYS.uf2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from fleet_devtools.certs import issue, make_ca

ROOT = Path(__file__).resolve().parents[2]

DEVICE_CODE = r"""
import gc, io, machine, tls
from iotlib.http_client import tls_context
# the emulated RTC starts at 2021 like a board's; a device checks certificates after its SNTP
# sync, so set the clock to the host's UTC first (the certificates were issued just now)
machine.RTC().datetime(%r)
CA, CERT, KEY, CCERT, CKEY = %r


class Pipe(io.IOBase):
    def __init__(self):
        self.buf = bytearray()

    def readinto(self, b):
        if not self.buf:
            return None  # EAGAIN: the other end has not written yet
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

    def write(self, b):
        self.buf.extend(b)
        return len(b)

    def ioctl(self, req, arg):
        return 0


class End(io.IOBase):
    def __init__(self, rx, tx):
        self.rx, self.tx = rx, tx

    def readinto(self, b):
        return self.rx.readinto(b)

    def write(self, b):
        return self.tx.write(b)

    def ioctl(self, req, arg):
        return 0


def session(mtls):
    a, b = Pipe(), Pipe()
    # the baseline comes before the server end exists, so freeing the server later cannot
    # make the client's share look smaller than it is
    gc.collect()
    base = gc.mem_free()
    sctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(CERT, KEY)
    if mtls:
        sctx.load_verify_locations(CA)
        sctx.verify_mode = tls.CERT_REQUIRED
    server = sctx.wrap_socket(End(a, b), server_side=True, do_handshake_on_connect=False)
    ctx = tls_context(CA, False, CCERT if mtls else None, CKEY if mtls else None)
    client = ctx.wrap_socket(End(b, a), server_hostname="localhost", do_handshake_on_connect=False)
    sent = got = None
    for _ in range(400):
        sent = sent or client.write(b"ping")
        if server.read(4):
            server.write(b"pong")
        got = sent and client.read(4)
        if got:
            break
    both = base - gc.mem_free()
    server.close()
    del server, sctx
    gc.collect()
    client_held = base - gc.mem_free()
    client.close()
    del client, ctx
    gc.collect()
    left = base - gc.mem_free()
    print("RESULT", mtls, got == b"pong", client_held, both, left)


session(False)
session(True)
gc.collect()
print("FREE", gc.mem_free())
"""


def der_key(issued) -> bytes:
    return issued.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(ROOT / "build" / "rp2" / "PICO_W_IOT-RELAYS.uf2"))
    args = p.parse_args()
    image = Path(args.image)
    if not image.exists():
        raise SystemExit(f"{image} is missing: build it with `firmware/build.sh rp2`")
    rp2040py = shutil.which("rp2040py") or str(Path(sys.executable).parent / "rp2040py")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ca = make_ca(d, "fleet-ca")
        server, client = issue(ca, d, "localhost", server=True), issue(ca, d, "device-1", server=False)
        ders = (ca.cert_der, server.cert_der, der_key(server), client.cert_der, der_key(client))
    now = time.gmtime()
    rtc = (now.tm_year, now.tm_mon, now.tm_mday, now.tm_wday, now.tm_hour, now.tm_min, now.tm_sec, 0)
    proc = subprocess.run([rp2040py, "micropython", "--image", str(image), "-c", DEVICE_CODE % (rtc, ders)],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)
    results = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["RESULT"]:
            mtls, ok, held, both, left = parts[1] == "True", parts[2] == "True", *map(int, parts[3:])
            results["mtls" if mtls else "server_verified"] = {
                "handshake_ok": ok, "client_session_bytes": held, "both_ends_at_handshake_bytes": both,
                "left_after_close_bytes": left}
        elif parts[:1] == ["FREE"]:
            results["heap_free_after"] = int(parts[1])
    if proc.returncode != 0 or len(results) != 3:
        raise SystemExit(f"rp2040py run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    print(json.dumps({"image": image.name, **results}))
    assert all(r["handshake_ok"] for k, r in results.items() if k != "heap_free_after"), "handshake failed"
    return 0


if __name__ == "__main__":
    sys.exit(main())
