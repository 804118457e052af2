# The client's address from what the socket layer reports as its peer, the same on every
# port: lwIP (the board) already gives a tuple ("192.168.1.7", 51234); the unix port gives
# the raw sockaddr bytes (family, port, address), where [0] is the address *family*, so
# indexing it put every IPv4 client in one rate-limit bucket.
_AF_INET = 2
_AF_INET6 = 10  # Linux; the unix port is the only one that hands out raw sockaddrs
UNKNOWN = ("?", 0)


def peer_address(addr):
    """(host, port) of the peer: ("127.0.5.1", 40000), ("::1", 40000); UNKNOWN if unreadable."""
    if isinstance(addr, tuple):
        return addr if len(addr) >= 2 else UNKNOWN
    if isinstance(addr, (bytes, bytearray)) and len(addr) >= 8:
        family = addr[0] | (addr[1] << 8)
        port = (addr[2] << 8) | addr[3]
        if family == _AF_INET:
            return ("%d.%d.%d.%d" % (addr[4], addr[5], addr[6], addr[7]), port)
        if family == _AF_INET6 and len(addr) >= 24:
            return (":".join("%x" % ((addr[i] << 8) | addr[i + 1]) for i in range(8, 24, 2)),
                    port)
    return UNKNOWN
