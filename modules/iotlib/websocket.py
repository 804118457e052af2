# The server side of RFC 6455 for the device's streams: the handshake (version 13 only,
# 426 otherwise), then frames read into one buffer allocated per connection.
#
# Refused with a close frame, then the socket is closed (never an HTTP answer after the
# 101): reserved bits or unknown opcodes, unmasked client frames, fragmented or oversized
# control frames, a continuation out of place (1002); text that is not UTF-8 (1007);
# control frames faster than `control_rps` (1008: a ping flood costs one bucket check
# each, and the pongs are written from a preallocated buffer); a message longer than
# the buffer (1009). Writes go through one lock, so a pong never interleaves with a
# frame another task is sending.
# The protocol only: the connection comes from http_server.take_stream() (no Microdot
# internals here); sessions, clients and keepalive are iotlib.ws_stream's.
import asyncio
import binascii
import hashlib

from iotlib.http_server import error, take_stream
from iotlib.rate_limit import RateLimiter

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
NORMAL, PROTOCOL, INVALID_DATA, POLICY, TOO_BIG = 1000, 1002, 1007, 1008, 1009


class WebSocketError(Exception):
    """The connection is over; `code` is the close code sent (None: the socket went away)."""

    def __init__(self, code, reason=""):
        super().__init__(reason)
        self.code = code


def handshake_error(request):
    """An error Response for a request that cannot be upgraded, or None."""
    h = request.headers
    if request.method != "GET" or h.get("Upgrade", "").lower() != "websocket" or \
            "upgrade" not in h.get("Connection", "").lower():
        return error(400, "this endpoint needs a WebSocket upgrade")
    try:
        key_ok = len(binascii.a2b_base64(h.get("Sec-WebSocket-Key", ""))) == 16
    except ValueError:
        key_ok = False
    if not key_ok:
        return error(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    if h.get("Sec-WebSocket-Version") != "13":
        return error(426, "only WebSocket version 13 is supported",
                     {"Sec-WebSocket-Version": "13"})
    return None


async def upgrade(request, max_message=512, control_rps=5, control_burst=10):
    """Answer 101 and return the WebSocket (check handshake_error() first). The connection
    is taken from the HTTP server (http_server.take_stream): it writes nothing more on it."""
    d = hashlib.sha1(request.headers["Sec-WebSocket-Key"].encode())
    d.update(_GUID)
    accept = binascii.b2a_base64(d.digest())[:-1]
    reader, writer = take_stream(request)
    await writer.awrite(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    return WebSocket(reader, writer, max_message, control_rps, control_burst)


class WebSocket:
    CLOSE = CLOSE
    PING = PING

    def __init__(self, reader, writer, max_message=512, control_rps=5, control_burst=10):
        self._reader = reader
        self._writer = writer
        self._msg = bytearray(max_message)  # the message being received (unmasked here)
        self._msg_mv = memoryview(self._msg)
        self._head = bytearray(14)  # one frame header in
        self._head_mv = memoryview(self._head)
        self._ctl = bytearray(2 + 125)  # one control frame out (pong, close)
        self._ctl_mv = memoryview(self._ctl)
        self._lock = asyncio.Lock()
        self._control = RateLimiter(control_rps, control_burst, max_keys=1)
        self.closed = False
        self.on_pong = None  # called for every pong (keepalive bookkeeping)
        self.pings = 0

    # ---- receiving ------------------------------------------------------------------

    async def receive(self):
        """The next text (str) or binary (bytes) message; raises WebSocketError at the end."""
        msg_len = 0
        msg_op = None  # opcode of a fragmented message in progress
        while True:
            fin, opcode, length = await self._frame_head()
            if opcode >= CLOSE:
                payload = await self._payload(length, msg_len)
                await self._control_frame(opcode, payload)
                continue
            if opcode == CONT:
                if msg_op is None:
                    await self._fail(PROTOCOL, "continuation without a message")
            elif msg_op is not None:
                await self._fail(PROTOCOL, "new message inside a fragmented one")
            else:
                msg_op = opcode
            if msg_len + length > len(self._msg):
                await self._fail(TOO_BIG, "message longer than %d bytes" % len(self._msg))
            await self._payload(length, msg_len)
            msg_len += length
            if fin:
                data = bytes(self._msg_mv[:msg_len])
                if msg_op == BINARY:
                    return data
                try:
                    return data.decode()
                except UnicodeError:
                    await self._fail(INVALID_DATA, "text is not UTF-8")

    async def _frame_head(self):
        mv = self._head_mv
        h = self._head
        await self._fill(mv[:2])
        b0, b1 = h[0], h[1]
        fin = b0 & 0x80
        opcode = b0 & 0x0F
        if b0 & 0x70:
            await self._fail(PROTOCOL, "reserved bits set (no extension was agreed)")
        if opcode not in (CONT, TEXT, BINARY, CLOSE, PING, PONG):
            await self._fail(PROTOCOL, "unknown opcode %d" % opcode)
        if not b1 & 0x80:
            await self._fail(PROTOCOL, "client frames must be masked")
        length = b1 & 0x7F
        if opcode >= CLOSE and (not fin or length > 125):
            await self._fail(PROTOCOL, "control frames are short and unfragmented")
        if length == 126:
            await self._fill(mv[2:4])
            length = (h[2] << 8) | h[3]
        elif length == 127:
            await self._fill(mv[2:10])
            if h[2] & 0x80:
                await self._fail(PROTOCOL, "length with the top bit set")
            length = 0
            for i in range(2, 10):
                length = (length << 8) | h[i]
                if length > 0xFFFF:  # far beyond any buffer: no big ints
                    await self._fail(TOO_BIG, "message too long")
        await self._fill(mv[10:14])  # the masking key
        return fin, opcode, length

    async def _payload(self, length, at):
        """Read and unmask `length` bytes into the message buffer at `at`; the view."""
        if at + length > len(self._msg):
            await self._fail(TOO_BIG, "message longer than %d bytes" % len(self._msg))
        view = self._msg_mv[at:at + length]
        await self._fill(view)
        m = self._head
        buf = self._msg
        for i in range(length):
            buf[at + i] ^= m[10 + (i & 3)]
        return view

    async def _control_frame(self, opcode, payload):
        if self._control.take(0):
            await self._fail(POLICY, "control frames too fast")
        if opcode == PING:
            self.pings += 1
            await self._send_control(PONG, payload)
        elif opcode == PONG:
            if self.on_pong is not None:
                self.on_pong()
        else:  # CLOSE: check the code and reason, echo the code, done
            code = NORMAL
            if len(payload) == 1:
                await self._fail(PROTOCOL, "close payload of one byte")
            if len(payload) >= 2:
                code = (payload[0] << 8) | payload[1]
                if not (1000 <= code <= 1011 and code not in (1004, 1005, 1006)) and \
                        not 3000 <= code <= 4999:
                    await self._fail(PROTOCOL, "close code %d" % code)
                try:
                    bytes(payload[2:]).decode()
                except UnicodeError:
                    await self._fail(INVALID_DATA, "close reason is not UTF-8")
            await self.close(code)
            raise WebSocketError(code, "closed by the client")

    async def _fill(self, view):
        n = 0
        while n < len(view):
            got = await self._reader.readinto(view[n:])
            if got is None:
                continue
            if not got:
                self.closed = True  # half-closed or gone: nothing more will be read
                raise WebSocketError(None, "connection closed mid-frame")
            n += got

    async def _fail(self, code, reason):
        await self.close(code)
        raise WebSocketError(code, reason)

    # ---- sending ----------------------------------------------------------------------

    async def send(self, data, opcode=None):
        """Send a message (str: text, bytes: binary, or the given opcode)."""
        if opcode is None:
            opcode = TEXT if isinstance(data, str) else BINARY
        if isinstance(data, str):
            data = data.encode()
        n = len(data)
        if n < 126:
            head = bytes((0x80 | opcode, n))
        elif n < 65536:
            head = bytes((0x80 | opcode, 126, n >> 8, n & 0xFF))
        else:
            raise ValueError("frame too long for the device")
        async with self._lock:
            self._writer.write(head)
            await self._writer.awrite(data)

    async def _send_control(self, opcode, payload):
        n = len(payload)
        c = self._ctl
        async with self._lock:  # the one control buffer is filled under the lock too
            c[0] = 0x80 | opcode
            c[1] = n
            c[2:2 + n] = payload
            await self._writer.awrite(self._ctl_mv[:2 + n])

    async def close(self, code=NORMAL):
        """Send a close frame with `code` once (best effort: the socket may be gone)."""
        if self.closed:
            return
        self.closed = True
        try:
            await self._send_control(CLOSE, bytes((code >> 8, code & 0xFF)))
        except OSError:
            pass
