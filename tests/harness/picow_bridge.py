"""A loopback-only network for the emulated Pico W (rp2040py `--board pico_w`).

rp2040py's CYW43 NAT bridge (rp2040py/external/cyw43/nat.py, 0.3.6) turns whatever the guest
dials into a real host connection, and sends its DNS to a public resolver. Tests may only reach
loopback (ARCHITECTURE.md section 6), so this module replaces that bridge before the emulator
starts, and puts a process-wide guard under it:

- `LoopbackGuard`: while active, socket connect/connect_ex/sendto/getaddrinfo and asyncio's
  create_connection/open_connection/create_datagram_endpoint refuse every address that is not
  a numeric loopback one (AF_UNIX stays allowed). A path the bridge below misses fails closed.
- `GatewayOnlyTcp` (a `TcpReflector`): the gateway 10.0.0.1:<port> is 127.0.0.1:<port>;
  any other destination is refused (the guest gets an RST). Its writers swallow the
  ENOTCONN that 0.3.6's `write_eof()` raises on a socket the peer already closed, which
  would otherwise stop the emulator.
- `GatewayOnlyUdp` (a `UdpRelay`): 10.0.0.1:<port> is relayed to 127.0.0.1:<port> (SNTP);
  DNS is answered by the bridge itself with REFUSED, so nothing is resolved and nothing leaves
  the process, and the guest fails at once instead of waiting out lwIP's retries (minutes of
  wall time at the emulator's 30-40x); every other datagram is dropped.
- `GuestInjector`: rp2040py has no host-to-guest port forwarding. A host-side TCP listener on
  127.0.0.1 whose connections are injected as inbound connections from 10.0.0.1 to the
  guest's port, through the same Ethernet frames the NAT sends, so a real HTTP client reaches
  the device's own server. What it sends is kept until the guest acknowledges it and sent
  again after `RTO_S` (doubling): the guest's lwIP drops a frame when it has no buffer for it
  (a busy guest at the emulator's speed), and a lost request would otherwise stall the client.
- `LoopbackCyw43439`: the Pico W's radio with `LoopbackNatBridge` wired in place of the default
  bridge, as a board extra (`loopback_pico_w()` returns the board spec).

Every refusal is recorded in `Refusals`, so a test can show both that the guest failed and that
the attempt was stopped here.
"""
import asyncio
import dataclasses
import ipaddress
import random
import socket
import threading

from rp2040py.boards import BOARDS
from rp2040py.external.cyw43 import Cyw43439, nat, net

GATEWAY = "10.0.0.1"
GUEST = "10.0.0.2"
_REFUSED_RCODE = 5
_MSS = 1460
_WINDOW = 65535
# Retransmission timeout, wall time. The guest runs 30-40x slower than real time and delays
# its ACKs (lwIP: up to 250 ms of its time, ~10 s wall), so a shorter timeout would only
# resend what is on its way; a duplicate costs the guest a dropped segment and an ACK.
RTO_S = 15.0
RTO_MAX_S = 60.0


class NotLoopback(ConnectionRefusedError):
    """Raised for any non-loopback destination: an OSError, so the NAT's own handlers treat it
    as a refused connection."""


class Refusals:
    """What the bridge and the guard stopped: (kind, address) tuples, thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def add(self, kind, address):
        with self._lock:
            self._items.append((kind, address))

    def of(self, kind):
        with self._lock:
            return [a for k, a in self._items if k == kind]

    def all(self):
        with self._lock:
            return list(self._items)


def is_loopback(host):
    if host is None:  # getaddrinfo(None, port): the local host
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: never resolved here


class LoopbackGuard:
    """Process-wide: refuse every non-loopback destination while active (a context manager).
    Refusals go to `refusals` as ("guard", address)."""

    def __init__(self, refusals):
        self.refusals = refusals
        self._saved = []

    def _check(self, family, address):
        if family == getattr(socket, "AF_UNIX", None) or isinstance(address, (str, bytes)):
            return
        host = address[0] if isinstance(address, tuple) else address
        if not is_loopback(host):
            self.refusals.add("guard", address)
            raise NotLoopback("loopback only in tests: %r refused" % (address,))

    def _patch(self, owner, name, make):
        original = getattr(owner, name)
        own = name in vars(owner)  # socket.socket inherits connect/sendto from _socket.socket
        self._saved.append((owner, name, original if own else None))
        setattr(owner, name, make(original))

    def __enter__(self):
        guard = self

        def sock_method(original):
            def checked(sock, address, *rest):
                target = rest[-1] if rest else address  # sendto(data[, flags], address)
                guard._check(sock.family, target)
                return original(sock, address, *rest)
            return checked

        for name in ("connect", "connect_ex", "sendto"):
            self._patch(socket.socket, name, sock_method)

        def getaddrinfo(original):
            def checked(host, *args, **kwargs):
                if not is_loopback(host):
                    guard.refusals.add("guard", (host,) + args[:1])
                    raise socket.gaierror(socket.EAI_NONAME, "loopback only in tests: %r" % (host,))
                return original(host, *args, **kwargs)
            return checked

        self._patch(socket, "getaddrinfo", getaddrinfo)

        def create_connection(original):
            async def checked(loop, protocol_factory, host=None, port=None, *args, **kwargs):
                if host is not None:
                    guard._check(None, (host, port))
                return await original(loop, protocol_factory, host, port, *args, **kwargs)
            return checked

        def create_datagram_endpoint(original):
            async def checked(loop, protocol_factory, local_addr=None, remote_addr=None, **kwargs):
                if remote_addr is not None:
                    guard._check(kwargs.get("family"), remote_addr)
                return await original(loop, protocol_factory, local_addr, remote_addr, **kwargs)
            return checked

        self._patch(asyncio.BaseEventLoop, "create_connection", create_connection)
        self._patch(asyncio.BaseEventLoop, "create_datagram_endpoint", create_datagram_endpoint)
        return self

    def __exit__(self, *exc):
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


class _EofSafeWriter:
    """A StreamWriter whose write_eof() ignores a socket the peer has already closed (0.3.6
    raises ENOTCONN there, from inside the emulator's own call chain)."""

    def __init__(self, writer):
        self._writer = writer

    def write_eof(self):
        try:
            self._writer.write_eof()
        except OSError:
            pass

    def __getattr__(self, name):
        return getattr(self._writer, name)


class GatewayOnlyTcp(nat.TcpReflector):
    """The guest's TCP: 10.0.0.1:<port> is 127.0.0.1:<port>, everything else refused."""

    def __init__(self, rp2040, queue_ethernet_frame, refusals):
        super().__init__(rp2040, queue_ethernet_frame, connect_timeout=5.0,
                         connect_fn=self._connect)
        self.refusals = refusals

    async def _connect(self, host, port):
        if host != GATEWAY:
            self.refusals.add("tcp", (host, port))
            raise NotLoopback("tcp to %s:%d refused (only the gateway %s is bridged)"
                              % (host, port, GATEWAY))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return reader, _EofSafeWriter(writer)


def dns_refused(query):
    """A DNS response with RCODE REFUSED for `query` (header and question echoed), or None."""
    if len(query) < 12:
        return None
    flags1 = 0x80 | (query[2] & 0x79)  # QR, the query's opcode and RD
    flags2 = 0x80 | _REFUSED_RCODE  # RA, REFUSED
    counts = query[4:6] + bytes(6)  # the question count; no answers or other records
    return query[0:2] + bytes([flags1, flags2]) + counts + query[12:]


class GatewayOnlyUdp(nat.UdpRelay):
    """The guest's UDP: DNS answered REFUSED here, 10.0.0.1:<port> relayed to 127.0.0.1:<port>,
    anything else dropped."""

    def __init__(self, rp2040, queue_ethernet_frame, refusals):
        super().__init__(rp2040, queue_ethernet_frame, dns_upstream=("127.0.0.1", 9), timeout=5.0)
        self.refusals = refusals
        self._queue = queue_ethernet_frame

    def maybe_handle(self, eth):
        ip = net.parse_ipv4(eth.payload) if eth.ethertype == net.ETHERTYPE_IPV4 else None
        udp = net.parse_udp(ip.payload) if ip is not None and ip.proto == net.IP_PROTO_UDP else None
        if udp is None:
            return False
        dst = nat._ip_to_str(ip.dst_ip)
        if udp.dst_port == 53:
            self.refusals.add("dns", (dst, 53))
            reply = dns_refused(udp.payload)
            if reply is not None:
                self._reply(eth.src_mac, ip, udp, reply)
            return True
        if dst != GATEWAY:
            self.refusals.add("udp", (dst, udp.dst_port))
            return True
        self._rp2040.schedule_threadsafe(self._relay(
            eth.src_mac, ip.src_ip, udp.src_port, udp.payload, ("127.0.0.1", udp.dst_port),
            ip.dst_ip, udp.dst_port))
        return True

    def _reply(self, guest_mac, ip, udp, payload):
        datagram = net.pack_udp(ip.dst_ip, ip.src_ip, udp.dst_port, udp.src_port, payload)
        packet = net.pack_ipv4(ip.dst_ip, ip.src_ip, net.IP_PROTO_UDP, datagram)
        self._queue(net.pack_ethernet(guest_mac, nat.GATEWAY_MAC, net.ETHERTYPE_IPV4, packet))


@dataclasses.dataclass
class _InboundFlow:
    """One host connection injected towards the guest: we are 10.0.0.1:peer_port."""

    peer_port: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    iss: int
    snd_nxt: int = 0  # next sequence number we send
    snd_una: int = 0  # oldest unacknowledged
    rcv_nxt: int = 0  # next sequence number expected from the guest
    guest_window: int = 0
    guest_mss: int = 536
    established: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    window_open: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    closed: bool = False
    fin_sent: bool = False
    # sent, not yet acknowledged: the payload from snd_una on (a FIN after it when fin_sent)
    unacked: bytearray = dataclasses.field(default_factory=bytearray)
    progress: int = 0  # bumped by every ACK that moves snd_una: the retransmit timer's clock
    retransmits: int = 0


class GuestInjector:
    """Host-to-guest TCP: connections to `port` on 127.0.0.1 become connections from
    10.0.0.1 to the guest's `guest_port`. Runs on the emulator's own loop (`start()` is a
    coroutine for it); `on_guest_segment()` is called by the bridge for the guest's replies."""

    def __init__(self, queue_ethernet_frame, guest_port, guest_mac):
        self._queue = queue_ethernet_frame
        self.guest_port = guest_port
        self._guest_mac = guest_mac  # a callable: the MAC learned from the guest's frames
        self._flows = {}
        self._next_peer_port = 20000
        self._server = None
        self.port = None
        self.connections = 0
        self.retransmits = 0  # segments sent again (all flows): tests print it
        self._tasks = set()

    async def start(self):
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def stop(self):
        if self._server is not None:
            self._server.close()
        for flow in list(self._flows.values()):
            self._drop(flow, reset=True)

    def owns(self, ip, tcp):
        return (ip.dst_ip == nat.GATEWAY_IP and tcp.src_port == self.guest_port
                and tcp.dst_port in self._flows)

    async def _accept(self, reader, writer):
        if self._guest_mac() is None:  # the guest has not sent a frame yet: no link
            writer.close()
            return
        self._next_peer_port = 20000 + (self._next_peer_port - 19999) % 20000
        iss = random.getrandbits(32)
        flow = _InboundFlow(self._next_peer_port, reader, writer, iss, snd_nxt=(iss + 1) & 0xFFFFFFFF,
                            snd_una=iss)
        self._flows[flow.peer_port] = flow
        self.connections += 1
        self._send(flow, net.TCP_SYN, seq=iss, mss=_MSS)
        timer = asyncio.ensure_future(self._retransmit(flow))
        self._tasks.add(timer)
        timer.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait_for(flow.established.wait(), 60)
        except asyncio.TimeoutError:
            self._drop(flow, reset=True)
            return
        if flow.closed:
            return
        await self._pump_host_to_guest(flow)

    async def _pump_host_to_guest(self, flow):
        try:
            while not flow.closed:
                room = flow.guest_window - ((flow.snd_nxt - flow.snd_una) & 0xFFFFFFFF)
                if room <= 0:
                    flow.window_open.clear()
                    await flow.window_open.wait()
                    continue
                chunk = await flow.reader.read(min(flow.guest_mss, room))
                if flow.closed:
                    return
                if not chunk:
                    break
                self._send(flow, net.TCP_ACK | net.TCP_PSH, payload=chunk)
                flow.unacked += chunk
                flow.snd_nxt = (flow.snd_nxt + len(chunk)) & 0xFFFFFFFF
        except (ConnectionError, OSError):
            self._drop(flow, reset=True)
            return
        if not flow.closed and not flow.fin_sent:
            self._send(flow, net.TCP_FIN | net.TCP_ACK)
            flow.snd_nxt = (flow.snd_nxt + 1) & 0xFFFFFFFF
            flow.fin_sent = True

    def on_guest_segment(self, tcp):
        flow = self._flows.get(tcp.dst_port)
        if flow is None:
            return
        if tcp.flags & net.TCP_RST:
            self._drop(flow, reset=False)
            return
        if tcp.flags & net.TCP_SYN and tcp.flags & net.TCP_ACK and not flow.established.is_set():
            flow.rcv_nxt = (tcp.seq + 1) & 0xFFFFFFFF
            flow.guest_mss = min(tcp.mss or 536, _MSS)
            flow.snd_una = tcp.ack
            flow.guest_window = tcp.window
            self._send(flow, net.TCP_ACK)
            flow.established.set()
            return
        if tcp.flags & net.TCP_ACK:
            self._acknowledged(flow, tcp.ack)
            flow.guest_window = tcp.window
            flow.window_open.set()
        if tcp.payload and tcp.seq == flow.rcv_nxt:
            flow.writer.write(tcp.payload)
            flow.rcv_nxt = (flow.rcv_nxt + len(tcp.payload)) & 0xFFFFFFFF
        if tcp.flags & net.TCP_FIN and (tcp.seq + len(tcp.payload)) & 0xFFFFFFFF == flow.rcv_nxt:
            flow.rcv_nxt = (flow.rcv_nxt + 1) & 0xFFFFFFFF
            self._send(flow, net.TCP_ACK)
            _EofSafeWriter(flow.writer).write_eof()
            if not flow.fin_sent:  # the guest closed first (HTTP/1.0-style): close our side too
                self._send(flow, net.TCP_FIN | net.TCP_ACK)
                flow.snd_nxt = (flow.snd_nxt + 1) & 0xFFFFFFFF
                flow.fin_sent = True
            self._drop(flow, reset=False)
            return
        if tcp.payload:
            self._send(flow, net.TCP_ACK)

    def _acknowledged(self, flow, ack):
        """Move snd_una to `ack` when it acknowledges something new (an old or duplicate ACK
        changes nothing) and forget the payload it covers."""
        acked = (ack - flow.snd_una) & 0xFFFFFFFF
        in_flight = (flow.snd_nxt - flow.snd_una) & 0xFFFFFFFF
        if acked == 0 or acked > in_flight:
            return
        del flow.unacked[:acked]  # a FIN's sequence number has no byte: past the end is fine
        flow.snd_una = ack
        flow.progress += 1

    async def _retransmit(self, flow):
        """Send the oldest unacknowledged segment again (or the SYN) when nothing was
        acknowledged for a timeout; the timeout doubles up to RTO_MAX_S while it goes on."""
        rto = RTO_S
        while not flow.closed:
            seen = flow.progress
            await asyncio.sleep(rto)
            if flow.closed:
                return
            if not flow.established.is_set():
                self._send(flow, net.TCP_SYN, seq=flow.iss, mss=_MSS)
            elif flow.progress != seen or flow.snd_una == flow.snd_nxt:
                rto = RTO_S  # acknowledged meanwhile, or nothing in flight
                continue
            elif flow.unacked:
                self._send(flow, net.TCP_ACK | net.TCP_PSH, seq=flow.snd_una,
                           payload=bytes(flow.unacked[:flow.guest_mss]))
            elif flow.fin_sent:
                self._send(flow, net.TCP_FIN | net.TCP_ACK, seq=flow.snd_una)
            else:
                continue
            flow.retransmits += 1
            self.retransmits += 1
            rto = min(rto * 2, RTO_MAX_S)

    def _drop(self, flow, reset):
        if flow.closed:
            return
        flow.closed = True
        if reset:
            self._send(flow, net.TCP_RST | net.TCP_ACK)
        flow.established.set()
        flow.window_open.set()
        flow.writer.close()
        self._flows.pop(flow.peer_port, None)

    def _send(self, flow, flags, seq=None, payload=b"", mss=None):
        segment = net.pack_tcp(nat.GATEWAY_IP, nat.GUEST_IP, flow.peer_port, self.guest_port,
                               seq=flow.snd_nxt if seq is None else seq, ack=flow.rcv_nxt,
                               flags=flags, window=_WINDOW, payload=payload, mss=mss)
        packet = net.pack_ipv4(nat.GATEWAY_IP, nat.GUEST_IP, net.IP_PROTO_TCP, segment)
        self._queue(net.pack_ethernet(self._guest_mac(), nat.GATEWAY_MAC, net.ETHERTYPE_IPV4, packet))


class LoopbackNatBridge(nat.NatBridge):
    """rp2040py's NAT with the loopback-only TCP and UDP above, and the injector's flows."""

    def __init__(self, rp2040, queue_ethernet_frame, refusals, guest_port):
        super().__init__(rp2040, queue_ethernet_frame)
        self._udp = GatewayOnlyUdp(rp2040, queue_ethernet_frame, refusals)
        self._tcp = GatewayOnlyTcp(rp2040, queue_ethernet_frame, refusals)
        self.guest_mac = None
        self.injector = GuestInjector(queue_ethernet_frame, guest_port, lambda: self.guest_mac)

    def handle_outbound_ethernet_frame(self, frame):
        eth = net.parse_ethernet(frame)
        if eth is None:
            return
        self.guest_mac = eth.src_mac
        if eth.ethertype == net.ETHERTYPE_IPV4:
            ip = net.parse_ipv4(eth.payload)
            if ip is not None and ip.proto == net.IP_PROTO_TCP:
                tcp = net.parse_tcp(ip.payload)
                if tcp is not None and self.injector.owns(ip, tcp):
                    self.injector.on_guest_segment(tcp)
                    return
        super().handle_outbound_ethernet_frame(frame)


class LoopbackCyw43439(Cyw43439):
    """The Pico W's radio, its bus wired to `LoopbackNatBridge` before anything runs."""

    def __init__(self, refusals, guest_port):
        super().__init__()
        self._refusals = refusals
        self._guest_port = guest_port
        self.bridge = None

    def attach(self, rp2040):
        super().attach(rp2040)
        self.bridge = LoopbackNatBridge(rp2040, self.bus.queue_rx_ethernet_frame,
                                        self._refusals, self._guest_port)
        self.bus.nat_bridge = self.bridge


def loopback_pico_w(radio):
    """rp2040py's pico_w board with `radio` (a LoopbackCyw43439) instead of its own Cyw43439."""
    spec = BOARDS["pico_w"]
    extras = tuple(f for f in spec.extras if f is not Cyw43439) + (lambda: radio,)
    assert len(extras) == len(spec.extras), "pico_w's radio factory not found"
    return dataclasses.replace(spec, extras=extras)
