# SNTP client (RFC 4330) over UDP for asyncio: asyncio has no datagram streams, so the socket
# is non-blocking and polled with asyncio.sleep_ms between attempts to read.
#
# Timestamps are integer microseconds since 1970: rp2 floats are single precision, and a
# float of today's time there is only good to 128 s.
import asyncio
import socket
import struct
import time

NTP_DELTA = 2208988800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
_US = 1000000


class SntpError(OSError):
    pass


def now_us():
    """The host's clock in integer microseconds (the default local clock)."""
    return time.time_ns() // 1000


def to_ntp(unix_us):
    secs = unix_us // _US
    return secs + NTP_DELTA, ((unix_us - secs * _US) << 32) // _US


def from_ntp(secs, frac):
    """Unix microseconds from an NTP timestamp (era 0: until 2036)."""
    return (secs - NTP_DELTA) * _US + ((frac * _US) >> 32)


def split_server(server, port=123):
    """'host', 'host:port' -> (host, port)."""
    if server.count(":") == 1:
        host, p = server.split(":")
        return host, int(p)
    return server, port


def build_request(transmit):
    """48 bytes: LI 0, version 4, mode 3 (client); our transmit time goes in the last field."""
    pkt = bytearray(48)
    pkt[0] = (0 << 6) | (4 << 3) | 3
    secs, frac = to_ntp(transmit)
    struct.pack_into("!II", pkt, 40, secs, frac)
    return pkt


def parse_reply(data, request, t1, t4):
    """(offset_us, delay_us, stratum) from a reply (t1, t4: our send and receive times in
    unix microseconds); SntpError when it is not an answer to us."""
    if len(data) < 48:
        raise SntpError("short reply")
    mode = data[0] & 7
    stratum = data[1]
    if mode not in (4, 5):
        raise SntpError("not a server reply (mode %d)" % mode)
    if stratum == 0:
        raise SntpError("kiss-o'-death " + bytes(data[12:16]).decode("ascii", "ignore"))
    if (data[0] >> 6) == 3:
        raise SntpError("server not synchronized")
    # the server echoes our transmit timestamp as its originate timestamp: anything else is
    # a stale or spoofed reply
    if bytes(data[24:32]) != bytes(request[40:48]):
        raise SntpError("originate timestamp mismatch")
    t2 = from_ntp(*struct.unpack_from("!II", data, 32))
    t3 = from_ntp(*struct.unpack_from("!II", data, 40))
    offset = ((t2 - t1) + (t3 - t4)) // 2
    delay = (t4 - t1) - (t3 - t2)
    return offset, delay, stratum


async def query(server, port=123, timeout_ms=1500, now=now_us, poll_ms=10):
    """Ask one server; returns {"offset_us", "delay_us", "stratum", "server"}; `now` is the
    local clock being measured (integer microseconds)."""
    host, port = split_server(server, port)
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        t1 = now()
        request = build_request(t1)
        s.sendto(request, addr)
        waited = 0
        while True:
            try:
                data, _ = s.recvfrom(64)
            except OSError:     # EAGAIN: nothing yet
                if waited >= timeout_ms:
                    raise SntpError("timeout from %s:%d" % (host, port))
                await asyncio.sleep_ms(poll_ms)
                waited += poll_ms
                continue
            t4 = now()
            try:
                offset, delay, stratum = parse_reply(data, request, t1, t4)
            except SntpError:
                if waited >= timeout_ms:
                    raise
                continue   # a stray datagram: keep waiting for ours
            return {"offset_us": offset, "delay_us": delay, "stratum": stratum,
                    "server": "%s:%d" % (host, port)}
    finally:
        s.close()
