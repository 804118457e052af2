"""The Pico W harness's host-to-guest TCP (harness.picow_bridge.GuestInjector) against a scripted
guest that loses frames, the way a busy emulated lwIP does when it has no buffer for one.
Host only: no emulator; the guest's side is built from rp2040py's own packet functions."""
import asyncio

import pytest
from rp2040py.external.cyw43 import nat, net

from harness import picow_bridge
from harness.picow_bridge import GuestInjector

pytestmark = pytest.mark.host

GUEST_PORT = 80
GUEST_MAC = bytes.fromhex("020000000002")


class LossyGuest:
    """A TCP peer on the guest's side: answers the SYN, drops the segments it is told to
    drop (by their order among the injector's segments), acknowledges the rest, answers a
    whole request line with `reply` and closes."""

    def __init__(self, drop):
        self.drop = set(drop)
        self.seen = 0
        self.injector = None
        self.iss = 7000
        self.snd_nxt = self.iss
        self.rcv_nxt = 0
        self.received = bytearray()
        self.reply = b"HTTP/1.0 401 Unauthorized\r\n\r\nexpired"

    def frame(self, frame):
        """The injector's queue: every frame it sends towards the guest."""
        ip = net.parse_ipv4(net.parse_ethernet(frame).payload)
        tcp = net.parse_tcp(ip.payload)
        self.seen += 1
        if self.seen in self.drop:
            return
        loop = asyncio.get_running_loop()
        loop.call_soon(self._answer, tcp)  # the guest answers later, as a device would

    def _answer(self, tcp):
        peer = tcp.src_port
        if tcp.flags & net.TCP_SYN:
            self.rcv_nxt = tcp.seq + 1
            self._send(peer, net.TCP_SYN | net.TCP_ACK, mss=536)
            self.snd_nxt += 1
            return
        if tcp.payload and tcp.seq == self.rcv_nxt:
            self.received += tcp.payload
            self.rcv_nxt += len(tcp.payload)
        self._send(peer, net.TCP_ACK)
        if self.received.endswith(b"\r\n\r\n") and self.reply:
            reply, self.reply = self.reply, b""
            self._send(peer, net.TCP_ACK | net.TCP_PSH | net.TCP_FIN, payload=reply)

    def _send(self, peer, flags, payload=b"", mss=None):
        segment = net.pack_tcp(nat.GUEST_IP, nat.GATEWAY_IP, GUEST_PORT, peer, self.snd_nxt,
                               self.rcv_nxt, flags, 8192, payload, mss=mss)
        self.snd_nxt += len(payload) + (1 if flags & net.TCP_FIN else 0)
        self.injector.on_guest_segment(net.parse_tcp(segment))


async def _request(drop):
    guest = LossyGuest(drop)
    injector = GuestInjector(guest.frame, GUEST_PORT, lambda: GUEST_MAC)
    guest.injector = injector
    await injector.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", injector.port)
        writer.write(b"POST /gpio/relay2 HTTP/1.0\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer, bytes(guest.received), injector.retransmits
    finally:
        injector.stop()


@pytest.mark.parametrize("drop, lost", [((), "nothing"), ((1,), "the SYN"),
                                        ((3,), "the request"), ((3, 4), "the request twice")])
def test_a_lost_segment_is_sent_again_and_the_request_completes(monkeypatch, drop, lost):
    monkeypatch.setattr(picow_bridge, "RTO_S", 0.2)
    answer, received, retransmits = asyncio.run(_request(drop))
    assert received == b"POST /gpio/relay2 HTTP/1.0\r\n\r\n", lost
    assert answer.endswith(b"expired"), (lost, answer)
    assert retransmits == len(drop), (lost, retransmits)
