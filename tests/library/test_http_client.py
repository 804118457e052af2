"""HttpClient against a raw asyncio server: chunked bodies, the size bound, the deadline,
JSON requests and the device token header."""
import asyncio
import http.server
import json
import re
import ssl
import subprocess
import threading

import pytest

from harness.run import run_unix
from harness.scripts import device_script, script_env

pytestmark = pytest.mark.unix


class RawServer:
    """Answers each path with canned bytes; /slow never answers; records requests."""

    def __init__(self):
        self.requests = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(5)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
        body = await reader.readexactly(int(headers.get("Content-Length", 0)))
        path = lines[0].split()[1]
        self.requests.append((lines[0], headers, body))
        if path == "/slow":
            await asyncio.sleep(0.6)  # past the client deadline, done before teardown
        elif path == "/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n7;ext=1\r\n, world\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n")
        elif path == "/big":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
        elif path == "/bigchunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + (b"400\r\n" + b"y" * 1024 + b"\r\n") * 3 + b"0\r\n\r\n")
        elif path == "/eof":
            writer.write(b"HTTP/1.0 200 OK\r\nX-Kind: eof\r\n\r\n" + b"z" * 1500)
        else:
            reply = json.dumps({"echo": json.loads(body or b"null"),
                                "auth": headers.get("Authorization")}).encode()
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply))
        await writer.drain()
        writer.close()

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def server():
    s = RawServer()
    yield s
    s.close()


def test_http_client_chunked_bounds_timeout_and_auth(server):
    out = run_unix(device_script(__file__, "http_client_chunked_bounds.py"), env=script_env(port=server.port)).splitlines()
    assert out[0] == "201 application/json {'echo': {'a': [1, 2]}, 'auth': 'Bearer dev-tok'}"
    assert out[1] == "200 hello, world!"
    assert out[2] == "HttpError: response body over 2048 bytes"
    assert out[3] == "HttpError: response body over 2048 bytes"
    assert out[4] == "200 1500 eof"
    assert out[5] == "HttpError: timeout after 400 ms True"
    assert out[6].startswith("201 ")  # the client is usable again after a timeout
    line, headers, body = server.requests[0]
    assert line == "POST /echo HTTP/1.1" and headers["Content-Type"] == "application/json"
    assert headers["X-Req"] == "1" and json.loads(body) == {"a": [1, 2]}
    # every request carries its own W3C traceparent: version 00, 32-hex trace id, 16-hex span id
    parents = [h["traceparent"] for _, h, _ in server.requests]
    assert all(re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", p) for p in parents), parents
    assert len({p.split("-")[1] for p in parents}) == len(parents)


def test_a_callers_traceparent_is_sent_as_given(server):
    given = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    out = run_unix("""
import asyncio
from iotlib.http_client import HttpClient
async def main():
    r = await HttpClient().get("http://127.0.0.1:%d/given", headers={"traceparent": "%s"})
    print(r.status)
asyncio.run(main())
""" % (server.port, given))
    assert out.strip() == "201"
    sent = [h for line, h, _ in server.requests if line.startswith("GET /given")][-1]
    assert sent["traceparent"] == given and list(sent).count("traceparent") == 1


def test_url_parsing():
    out = run_unix("""
from iotlib.http_client import parse_url
print(parse_url("https://cfg.example/api/v1?x=1"))
print(parse_url("http://10.0.0.2:8080"))
print(parse_url("http://[::1]:9000/a"))
""").splitlines()
    assert out == ["(True, 'cfg.example', 443, '/api/v1?x=1')", "(False, '10.0.0.2', 8080, '/')",
                   "(False, '::1', 9000, '/a')"]


def _self_signed(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return key, cert


def test_https_with_and_without_server_verification(tmp_path):
    key, cert = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"tls": True, "auth": self.headers.get("Authorization")}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    try:
        out = run_unix(device_script(__file__, "https_verification.py"), env=script_env(port=httpd.server_address[1], der=der.hex()),
                       timeout=60).splitlines()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert out[0] == "200 {'auth': 'Bearer tls-tok', 'tls': True}" or \
        out[0] == "200 {'tls': True, 'auth': 'Bearer tls-tok'}"
    assert out[1] == "no CA: https without a CA to verify the server (give cadata, or tls_insecure)"
    assert out[2] == "verified 200"
    assert out[3] == "refused"  # a certificate for localhost does not match 127.0.0.1
