"""Free loopback ports for test servers: the one helper both test suites (fleet/tests, tests/) use."""
import socket


def free_port(kind=socket.SOCK_STREAM):
    """A port nobody on 127.0.0.1 holds now (TCP by default; socket.SOCK_DGRAM for UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    """Nothing accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def free_port_block(count=3):
    """A base port with `count` free consecutive ports after it (a launcher numbering its servers)."""
    for _ in range(50):
        base = free_port()
        if base + count < 65535 and all(port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port block")
