"""Free loopback ports for test servers: the one helper both test suites (fleet/tests, tests/) use.

Ports are drawn below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port the
kernel hands out for bind(0) may be handed out again, as the local end of any outgoing
connection, before the server that was meant to have it binds it; a device simulation binds
its API seconds after the launcher chose the port, and once lost it that way (EADDRINUSE)."""
import random
import socket

_LOWEST = 15000  # above the usual fixed service ports


def _ephemeral_start():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port, kind):
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_block(count=3, kind=socket.SOCK_STREAM):
    """A base port with `count` consecutive ports from it that nobody on 127.0.0.1 holds now
    (TCP by default), none of them one the kernel would hand out on its own."""
    top = _ephemeral_start() - count
    for _ in range(200):
        base = random.randrange(_LOWEST, top)
        if all(_bindable(base + i, kind) for i in range(count)):
            return base
    raise RuntimeError("no free block of %d ports between %d and %d" % (count, _LOWEST, top))


def free_port(kind=socket.SOCK_STREAM):
    """A port nobody on 127.0.0.1 holds now (TCP by default; socket.SOCK_DGRAM for UDP)."""
    return free_port_block(1, kind)


def port_free(port):
    """Nothing accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
