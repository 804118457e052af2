# Async HTTP/1.1 client over asyncio streams: TLS for https URLs, JSON bodies, chunked
# responses, one deadline per request and a bounded response body. One request runs at a
# time per client so every request reuses the same preallocated body buffer.
import asyncio
import json as _json
import os
from binascii import hexlify


class HttpError(OSError):
    pass


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # names lowercased
        self.body = body

    def json(self):
        return _json.loads(self.body) if self.body else None

    def __repr__(self):
        return "<Response %d, %d bytes>" % (self.status, len(self.body))


def parse_url(url):
    """(tls, host, port, path) of an http:// or https:// URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ValueError("unsupported URL " + url)
    tls = scheme == "https"
    hostport, slash, path = rest.partition("/")
    host, colon, port = hostport.rpartition(":")
    if not colon or "]" in port:  # no port given (or the colon belongs to an IPv6 literal)
        host, port = hostport, 443 if tls else 80
    return tls, host.strip("[]"), int(port), slash + path if slash else "/"


def tls_context(cadata=None, insecure=False, client_cert=None, client_key=None):
    """Verify the server against cadata (DER); no CA is an error unless insecure is asked for."""
    import tls

    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if cadata:
        ctx.load_verify_locations(cadata)  # DER bytes; positional in MicroPython
        ctx.verify_mode = tls.CERT_REQUIRED
    elif insecure:
        ctx.verify_mode = tls.CERT_NONE  # encrypted, but anyone on the path can pose as the server
    else:
        raise HttpError("https without a CA to verify the server (give cadata, or tls_insecure)")
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key)  # DER certificate and key: mTLS
    return ctx


class HttpClient:
    def __init__(self, auth=None, timeout_ms=10000, max_body=8192, max_header_line=512,
                 cadata=None, user_agent="iotlib", tls_insecure=False, client_cert=None,
                 client_key=None):
        self.auth = auth
        self.timeout_ms = timeout_ms
        self.max_body = max_body
        self.max_header_line = max_header_line
        self.cadata = cadata
        self.tls_insecure = tls_insecure
        self.client_cert = client_cert
        self.client_key = client_key
        self.user_agent = user_agent
        self._body = bytearray(max_body)
        self._lock = asyncio.Lock()
        self._tls = None

    async def get(self, url, headers=None):
        return await self.request("GET", url, headers=headers)

    async def post(self, url, json=None, headers=None):
        return await self.request("POST", url, json=json, headers=headers)

    async def put(self, url, json=None, headers=None):
        return await self.request("PUT", url, json=json, headers=headers)

    async def request(self, method, url, json=None, headers=None, body=None, timeout_ms=None):
        """Send one request; raise HttpError on timeout, oversize or a malformed reply."""
        async with self._lock:
            try:
                return await asyncio.wait_for_ms(
                    self._request(method, url, json, headers, body),
                    timeout_ms or self.timeout_ms)
            except asyncio.TimeoutError:
                raise HttpError("timeout after %d ms" % (timeout_ms or self.timeout_ms))

    def _context(self):
        if self._tls is None:
            self._tls = tls_context(self.cadata, self.tls_insecure, self.client_cert, self.client_key)
        return self._tls

    def _head(self, method, host, port, path, headers, body):
        lines = ["%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\nUser-Agent: %s\r\n"
                 % (method, path, host, port, self.user_agent)]
        sent = set()
        for name, value in (headers or {}).items():
            sent.add(name.lower())
            lines.append("%s: %s\r\n" % (name, value))
        if "traceparent" not in sent:
            # W3C trace context: each request starts a trace the fleet server's spans continue
            ids = hexlify(os.urandom(24)).decode()
            lines.append("traceparent: 00-%s-%s-01\r\n" % (ids[:32], ids[32:]))
        token = self.auth.device_token() if self.auth is not None else None
        if token and "authorization" not in sent:
            lines.append("Authorization: Bearer %s\r\n" % token)
        if body is not None:
            lines.append("Content-Length: %d\r\n" % len(body))
        lines.append("\r\n")
        return "".join(lines).encode()

    async def _request(self, method, url, json, headers, body):
        tls, host, port, path = parse_url(url)
        if json is not None:
            body = _json.dumps(json).encode()
            headers = dict(headers or {})
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        reader, writer = await asyncio.open_connection(host, port,
                                                       ssl=self._context() if tls else None)
        try:
            writer.write(self._head(method, host, port, path, headers, body))
            if body:
                writer.write(body)
            await writer.drain()
            status, resp_headers = await self._read_head(reader)
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                size = 0
            elif resp_headers.get("transfer-encoding", "").lower() == "chunked":
                size = await self._read_chunked(reader)
            elif "content-length" in resp_headers:
                size = await self._read_exactly(reader, 0, int(resp_headers["content-length"]))
            else:
                size = await self._read_to_eof(reader)
            return Response(status, resp_headers, bytes(memoryview(self._body)[:size]))
        finally:
            writer.close()
            await writer.wait_closed()

    async def _readline(self, reader):
        line = await reader.readline()
        if len(line) > self.max_header_line:
            raise HttpError("header line too long")
        return line

    async def _read_head(self, reader):
        status_line = await self._readline(reader)
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError("bad status line %r" % status_line[:40])
        headers = {}
        while True:
            line = await self._readline(reader)
            if not line:
                raise HttpError("connection closed in headers")
            if line in (b"\r\n", b"\n"):
                return int(parts[1]), headers
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()

    def _room(self, used, wanted):
        if used + wanted > self.max_body:
            raise HttpError("response body over %d bytes" % self.max_body)

    async def _read_exactly(self, reader, used, n):
        self._room(used, n)
        end = used + n
        view = memoryview(self._body)
        while used < end:
            got = await reader.readinto(view[used:end])
            if not got:
                raise HttpError("connection closed in body")
            used += got
        return used

    async def _read_to_eof(self, reader):
        used = 0
        view = memoryview(self._body)
        while True:
            if used == self.max_body:
                # a full buffer is fine only if the server has nothing more to send
                if await reader.read(1):
                    self._room(used, 1)
                return used
            got = await reader.readinto(view[used:])
            if not got:
                return used
            used += got

    async def _read_chunked(self, reader):
        used = 0
        while True:
            line = await self._readline(reader)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpError("bad chunk size")
            if size == 0:
                while (await self._readline(reader)) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: read and ignore
                return used
            used = await self._read_exactly(reader, used, size)
            await reader.readline()  # the CRLF after each chunk
