# HTTP/1.1 connections for the device API: how a connection is accepted, read, bounded,
# answered and closed. Microdot (pinned, frozen) still matches routes and runs the
# handlers; this is the one module that imports it and knows its internals (Request's
# constructor and its socket, dispatch_request, Response's fields, NoCaseDict), so a
# Microdot upgrade is checked here only: tests/test_microdot_pin.py fails when the frozen
# version is not MICRODOT_VERSION or an internal used here changed shape. Elsewhere only
# Microdot's documented API is used (route/before_request/after_request/errorhandler,
# request.path/args/headers/client_addr/route/g, Response(body, status, headers)); a
# handler that takes the connection over (the WebSocket) goes through take_stream() and
# send_buffer().
#
# What a connection can cost is fixed up front (ConnectionLimits):
#   - at most max_connections at once, each with its own preallocated head buffer; when
#     all are taken, a newcomer evicts the connection that has waited longest without
#     sending a whole request head (idle sockets and slowloris clients go first), or is
#     refused with a 503 when every slot is serving a request;
#   - the request line (414), the path (414), the whole head (431) and the body (413)
#     are bounded before anything is allocated for them;
#   - one reaper task enforces the idle, head, body and write deadlines by cancelling
#     the connection's task (no per-request timer objects);
#   - every exception, from a handler or from Microdot's own routing, ends in a JSON
#     answer (never after a WebSocket upgrade) and the socket is closed in every case.
import asyncio
import json
import time

from micropython import const

from microdot import Microdot, Request, Response
from microdot.microdot import NoCaseDict

from iotlib.peer import peer_address

MICRODOT_VERSION = "2.7.0"  # the Microdot whose internals this module was written against

_REASONS = {200: b"OK", 204: b"No Content", 400: b"Bad Request", 401: b"Unauthorized",
            403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
            408: b"Request Timeout", 409: b"Conflict", 411: b"Length Required",
            413: b"Payload Too Large", 414: b"URI Too Long", 426: b"Upgrade Required",
            429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
            500: b"Internal Server Error", 503: b"Service Unavailable"}
_ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 408: "request_timeout", 409: "conflict",
    411: "length_required", 413: "payload_too_large", 414: "uri_too_long",
    426: "upgrade_required", 429: "rate_limited", 431: "headers_too_large",
    500: "internal_error", 503: "unavailable",
}
_HEAD_SIZE = const(1024)  # status line + headers + small bodies go out in one write from here

# Sent without waiting (one non-blocking write) to a connection we are dropping.
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
         b"Content-Type: application/json\r\nContent-Length: 58\r\n\r\n"
         b'{"error": "unavailable", "detail": "too many connections"}')
_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: 62\r\n\r\n"
            b'{"error": "request_timeout", "detail": "request not received"}')

# ---- connection phases ------------------------------------------------------------------
_FREE = const(0)  # slot unused
_IDLE = const(1)  # accepted, nothing received yet (idle deadline)
_HEAD = const(2)  # request head arriving (head deadline, counted from accept)
_BODY = const(3)  # body arriving (body deadline)
_SERVING = const(4)  # in Microdot and the handler (a WebSocket session stays here; no deadline)
_WRITING = const(5)  # response going out (write deadline)
_CLOSING = const(6)  # cancelled by the reaper or evicted; its task is closing the socket
_LINGER = const(7)  # answered a refused request or ended a WebSocket: reading what is still in
# flight before the close, so the kernel does not reset the connection (and with it the
# answer) over unread input; bounded by _LINGER_MS and _LINGER_BYTES
_LINGER_MS = const(500)
_LINGER_BYTES = const(65536)  # read 1 KB at a time into the slot's buffer


ALREADY_HANDLED = Response.already_handled  # a handler's answer when it wrote its own


def error(status, detail, headers=None):
    """A JSON error response: {"error": <short code>, "detail": <what to fix>}."""
    body = json.dumps({"error": _ERROR_CODES.get(status, "error"), "detail": detail})
    h = {"Content-Type": "application/json"}
    if headers:
        h.update(headers)
    return Response(body, status, h)


def take_stream(request):
    """The connection's (reader, writer), handed to a handler that speaks another protocol
    on it from now on (a WebSocket after its 101): the server writes no HTTP answer on it,
    and lingers before closing it."""
    request.upgraded = True
    return request.sock


def send_buffer(request, n):
    """Set the kernel's send buffer of the request's socket to `n` bytes (SO_SNDBUF);
    False when the port cannot (best effort: the stream works either way)."""
    try:
        request.sock[1].s.setsockopt(1, 7, n)  # SOL_SOCKET, SO_SNDBUF
        return True
    except Exception:
        return False


class ConnectionLimits:
    """Every bound on a connection, in one place. The defaults are sized for the board:
    lwIP there has MEMP_NUM_TCP_PCB = 5 active TCP connections for everything (the
    listening socket has its own pool), and the device's own fleet client needs one, so
    4 served at once; TCP_LISTEN_BACKLOG is on, so `backlog` is enforced by lwIP too."""

    def __init__(self, max_connections=4, backlog=4, idle_s=5, head_s=10, body_s=10,
                 write_s=10, max_line=512, max_path=64, max_head=1024, max_body=2048):
        if max_connections < 1 or max_head < max_line or max_line < 16:
            raise ValueError("max_connections >= 1 and 16 <= max_line <= max_head")
        self.max_connections = max_connections
        self.backlog = backlog
        self.idle_ms = int(idle_s * 1000)
        self.head_ms = int(head_s * 1000)
        self.body_ms = int(body_s * 1000)
        self.write_ms = int(write_s * 1000)
        self.max_line = max_line
        self.max_path = max_path
        self.max_head = max_head
        self.max_body = max_body

    @classmethod
    def from_settings(cls, section):
        """From the `http` settings section ({"max_connections": 4, "idle_s": 5, ...})."""
        kw = {}
        for key in ("max_connections", "backlog", "idle_s", "head_s", "body_s", "write_s",
                    "max_line", "max_path", "max_head", "max_body"):
            if key in (section or {}):
                kw[key] = section[key]
        return cls(**kw)


class _Slot:
    """One connection's place: its head buffer (allocated once), task, phase and clock."""

    def __init__(self, head_bytes):
        self.buf = bytearray(head_bytes)
        self.mv = memoryview(self.buf)
        self.task = None
        self.writer = None
        self.phase = _FREE
        self.since = 0


class _Closed(Exception):
    """The client closed (or broke) the connection before a whole request arrived."""


class HttpServer(Microdot):
    """Microdot with bounded connections and one-write HTTP/1.1 responses.

    Counters (plain attributes, read by the metrics registry): accepted, refused
    (no slot), evicted (slot taken for a newcomer), timeouts (deadline passed),
    rejected (request refused before dispatch: 400/408/411/413/414/431), errors
    (exceptions turned into a 500).
    """

    def __init__(self, limits=None):
        super().__init__()
        self.limits = limits or ConnectionLimits()
        self._slots = [_Slot(self.limits.max_head) for _ in range(self.limits.max_connections)]
        self._head = bytearray(_HEAD_SIZE)
        self._head_mv = memoryview(self._head)
        self._reaper = None
        self.server = None
        self.accepted = self.refused = self.evicted = self.timeouts = 0
        self.rejected = self.errors = 0

    # ---- serving ----------------------------------------------------------------------

    async def start_server(self, host="0.0.0.0", port=80, **_ignored):
        """Listen (with the configured backlog) and serve until shutdown()."""
        self.server = await asyncio.start_server(self.handle_request, host, port,
                                                 self.limits.backlog)
        self._reaper = asyncio.create_task(self._reap_loop())
        try:
            await self.server.wait_closed()
        finally:
            self._reaper.cancel()
            self._reaper = None

    def shutdown(self):
        if self.server is not None:
            self.server.close()

    def busy(self):
        """Connections holding a slot now."""
        n = 0
        for s in self._slots:
            if s.phase != _FREE:
                n += 1
        return n

    # ---- slots ------------------------------------------------------------------------

    def _claim(self, task, now):
        """A slot for a new connection: a free one, else the longest-waiting connection
        that has not sent its head yet, or is lingering (evicted), else None."""
        victim = None
        for s in self._slots:
            if s.phase == _FREE:
                victim = s
                break
            if (s.phase == _IDLE or s.phase == _HEAD or s.phase == _LINGER) and (
                    victim is None or time.ticks_diff(victim.since, s.since) > 0):
                victim = s
        if victim is None:
            return None
        if victim.phase != _FREE:
            self.evicted += 1
            old = victim.task
            victim.phase = _CLOSING
            old.cancel()  # it resumes only to close its own socket; the buffer is ours now
        victim.task = task
        victim.phase = _IDLE
        victim.since = now
        return victim

    def _release(self, slot, task):
        if slot.task is task:  # not handed over to a newcomer meanwhile
            slot.task = None
            slot.writer = None
            slot.phase = _FREE

    async def _reap_loop(self):
        while True:
            await asyncio.sleep_ms(250)
            self.reap(time.ticks_ms())

    def reap(self, now):
        """Cancel every connection past its phase's deadline; returns how many."""
        lim = self.limits
        n = 0
        for s in self._slots:
            p = s.phase
            if p == _IDLE:
                limit = lim.idle_ms
            elif p == _HEAD:
                limit = lim.head_ms
            elif p == _BODY:
                limit = lim.body_ms
            elif p == _WRITING:
                limit = lim.write_ms
            elif p == _LINGER:
                limit = _LINGER_MS
            else:
                continue
            if time.ticks_diff(now, s.since) >= limit:
                s.phase = _CLOSING
                if p == _LINGER:  # not a timeout: the normal end of a lingering close
                    s.task.cancel()
                    continue
                self.timeouts += 1
                n += 1
                if p != _WRITING:  # say why, if the socket takes it at once (never waits)
                    _send_now(s.writer, _TIMEOUT)
                s.task.cancel()
        return n

    # ---- one connection -------------------------------------------------------------

    async def handle_request(self, reader, writer):
        task = asyncio.current_task()
        slot = self._claim(task, time.ticks_ms())
        if slot is None:
            self.refused += 1
            _send_now(writer, _BUSY)
            _close(writer)
            return
        self.accepted += 1
        slot.writer = writer
        req = None
        linger = False
        try:
            try:
                req = await self._read_request(slot, reader, writer)
            except _Closed:
                return
            if isinstance(req, Response):  # refused before dispatch: input may be unread
                self.rejected += 1
                res, req, linger = req, None, True
            else:
                slot.phase = _SERVING
                try:
                    res = await self.dispatch_request(req)
                except Exception:  # Microdot's own code (e.g. route matching) raised
                    self.errors += 1
                    res = error(500, "internal error")
                if getattr(req, "upgraded", False):
                    # the stream belongs to the WebSocket: no HTTP after a 101
                    res, linger = Response.already_handled, True
            if res is not Response.already_handled:
                slot.phase = _WRITING
                slot.since = time.ticks_ms()
                await self._write(writer, res)
            if linger and slot.phase != _CLOSING:
                await self._linger(slot, reader)
        except asyncio.CancelledError:
            if slot.task is task and slot.phase != _CLOSING:
                raise  # the server is stopping
        except Exception:  # the client went away mid-write, or worse: close, count
            self.errors += 1
        finally:
            _close(writer)
            self._release(slot, task)

    async def _linger(self, slot, reader):
        """Drain what is in flight (non-blocking reads into the slot's buffer) until the
        client has been quiet for two 20 ms looks, it closes, or the bounds are reached."""
        sock = getattr(reader, "s", None)
        if sock is None:
            return
        slot.phase = _LINGER
        slot.since = time.ticks_ms()
        n = 0
        quiet = 0
        while n < _LINGER_BYTES and quiet < 2:
            try:
                got = sock.readinto(slot.mv)
            except OSError:  # reset by the client: nothing left to protect
                return
            if got is None:  # nothing pending now
                quiet += 1
                await asyncio.sleep_ms(20)
                continue
            if not got:
                return
            n += got
            quiet = 0

    async def _read_request(self, slot, reader, writer):
        """The Request, or an error Response when it breaks a bound; _Closed when the
        client hung up before a whole head."""
        lim = self.limits
        buf = slot.buf
        mv = slot.mv
        n = 0
        end = -1
        while end < 0:
            if n == len(buf):
                if buf.find(b"\r\n", 0, n) < 0:
                    return error(414, "request line longer than %d bytes" % lim.max_line)
                return error(431, "request head longer than %d bytes" % lim.max_head)
            got = await reader.readinto(mv[n:])
            if got is None:
                continue
            if not got:
                raise _Closed()
            if slot.phase == _IDLE:
                slot.phase = _HEAD  # the head deadline still counts from accept
            start = n - 3 if n > 3 else 0
            n += got
            end = buf.find(b"\r\n\r\n", start, n)
            if n > lim.max_line and buf.find(b"\r\n", 0, lim.max_line + 2) < 0:
                return error(414, "request line longer than %d bytes" % lim.max_line)
        line_end = buf.find(b"\r\n", 0, end + 2)
        if line_end > lim.max_line:
            return error(414, "request line longer than %d bytes" % lim.max_line)
        try:
            head = bytes(mv[:end]).decode()
        except UnicodeError:
            return error(400, "request head is not UTF-8")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return error(400, "malformed request line")
        method, url, version = parts
        q = url.find("?")
        if (q if q >= 0 else len(url)) > lim.max_path:
            return error(414, "path longer than %d bytes" % lim.max_path)
        headers = NoCaseDict()
        for i in range(1, len(lines)):
            line = lines[i]
            colon = line.find(":")
            if colon <= 0:
                return error(400, "malformed header line")
            headers[line[:colon].strip()] = line[colon + 1:].strip()
        if "Transfer-Encoding" in headers:
            return error(411, "send the body with a Content-Length")
        length = headers.get("Content-Length")
        if length is None:
            length = 0
        else:
            try:
                length = int(length)
            except ValueError:
                length = -1
            if length < 0:
                return error(400, "bad Content-Length")
            if length > lim.max_body:
                return error(413, "request body longer than %d bytes" % lim.max_body)
        body = b""
        if length:
            have = n - end - 4
            if have >= length:
                body = bytes(mv[end + 4:end + 4 + length])
            else:
                slot.phase = _BODY
                slot.since = time.ticks_ms()
                try:
                    body = bytes(mv[end + 4:n]) + await reader.readexactly(length - have)
                except EOFError:
                    raise _Closed()
        return Request(self, peer_address(writer.get_extra_info("peername")), method, url,
                       version[5:], headers, body=body, sock=(reader, writer))

    # ---- responses ------------------------------------------------------------------

    async def _write(self, writer, res):
        n = self._compose(res)
        if n is None:
            await _write_streamed(writer, res)
        else:
            await writer.awrite(self._head_mv[:n])

    def _compose(self, res):
        """Lay the response into the head buffer; its length, or None when it won't fit.

        Runs without awaiting, so concurrent requests never share the buffer mid-write
        (the stream copies what it cannot send at once)."""
        res.complete()
        body = res.body
        if not isinstance(body, (bytes, bytearray)):
            return None
        buf = self._head
        n = _put(buf, 0, b"HTTP/1.1 %d " % res.status_code)
        n = _put(buf, n, _REASONS.get(res.status_code, b"Unknown"))
        n = _put(buf, n, b"\r\nConnection: close\r\n")
        for header, value in res.headers.items():
            for v in (value if isinstance(value, list) else (value,)):
                n = _put(buf, n, b"%s: %s\r\n" % (header, v))
        n = _put(buf, n, b"\r\n")
        if not res.is_head:
            n = _put(buf, n, body)
        return n if n >= 0 else None


async def _write_streamed(writer, res):
    """A response too big for the head buffer, or with a streamed body: HTTP/1.1 head,
    then the body as Microdot iterates it."""
    out = [b"HTTP/1.1 %d " % res.status_code, _REASONS.get(res.status_code, b"Unknown"),
           b"\r\nConnection: close\r\n"]
    for header, value in res.headers.items():
        for v in (value if isinstance(value, list) else (value,)):
            out.append(b"%s: %s\r\n" % (header, v))
    out.append(b"\r\n")
    await writer.awrite(b"".join(out))
    if res.is_head:
        return
    chunks = res.body_iter()
    try:
        async for chunk in chunks:
            await writer.awrite(chunk.encode() if isinstance(chunk, str) else chunk)
    finally:
        if hasattr(chunks, "aclose"):
            await chunks.aclose()


def _put(buf, n, data):
    """Copy data into buf at n; -1 once the buffer has overflowed."""
    if n < 0 or n + len(data) > len(buf):
        return -1
    buf[n:n + len(data)] = data
    return n + len(data)


def _send_now(writer, data):
    """One non-blocking write: whatever the socket takes now, never waiting for more."""
    try:
        writer.s.write(data)
    except Exception:
        pass


def _close(writer):
    try:
        writer.s.close()
    except Exception:
        pass
