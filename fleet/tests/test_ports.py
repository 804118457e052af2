"""The test suites' port helper (fleet_devtools.ports): ports below the kernel's ephemeral
range, so an outgoing connection cannot take one before its server binds it."""
import socket

from fleet_devtools.ports import _ephemeral_start, free_port, free_port_block


def test_ports_are_free_and_never_ones_the_kernel_hands_out():
    lowest_ephemeral = _ephemeral_start()
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        port = free_port(kind)
        assert port < lowest_ephemeral
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", port))  # free indeed
    base = free_port_block(3)
    assert base + 2 < lowest_ephemeral
    held = [socket.socket() for _ in range(3)]
    try:
        for i, s in enumerate(held):
            s.bind(("127.0.0.1", base + i))
    finally:
        for s in held:
            s.close()


def test_a_held_port_is_passed_over(monkeypatch):
    """The first candidate is held by a listener: the helper takes the next one."""
    from fleet_devtools import ports
    held = socket.socket()
    held.bind(("127.0.0.1", free_port()))
    held.listen()
    taken = held.getsockname()[1]
    spare = free_port()
    candidates = iter([taken, spare])
    monkeypatch.setattr(ports.random, "randrange", lambda lo, hi: next(candidates))
    try:
        assert free_port() == spare
    finally:
        held.close()
