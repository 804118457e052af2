"""Issue 12, the device's half: each failure of the adversarial run, replayed against the
unix build with real clients (httpx, raw sockets speaking HTTP and RFC 6455, PyJWT), plus
the reported relay state after a SIGKILL with the real fleet-server."""
import base64
import json
import os
import select
import socket
import struct
import time

import httpx
import pytest

from harness.fleet_device import Fleet
from harness.role_device import RoleDevice, auth, make_token
from harness.waiting import wait_for

pytestmark = pytest.mark.unix

E2E_TENANT, E2E_NAMESPACE = "acme", "plant1"  # a fleet-provisioned device's, as in test_device_e2e.py

RELAYS = {"relay1": {"pin": 2}, "relay2": {"pin": 3}}
FAST = {"idle_s": 1, "head_s": 2, "body_s": 1, "write_s": 2}


@pytest.fixture
def relays(role_device):
    return role_device("relays", relays=RELAYS, http=FAST,
                       rate_limit={"per_token_rps": 1000, "per_address_rps": 1000, "burst": 1000})


@pytest.fixture
def sensors(role_device):
    return role_device("sensors", fields={"t": {"source": "sim", "rate_hz": 5}}, max_clients=3,
                       client_rps=5, client_burst=10, http=FAST)


def open_fds(device):
    return len(os.listdir("/proc/%d/fd" % device.proc.pid))


def raw(device, data, source="127.0.0.1", timeout=5, shut=False):
    """Send bytes on a fresh connection; everything the device answers until it closes."""
    s = socket.create_connection(("127.0.0.1", device.port), timeout=timeout,
                                 source_address=(source, 0))
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def status_of(reply):
    return int(reply.split(b" ", 2)[1])


def json_body(reply):
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])


# -- 1: altered signatures ------------------------------------------------------------


def test_altered_signatures_are_refused_and_move_nothing(relays):
    token = make_token()
    head, body, sig = token.split(".")
    # the last character's unused low bits: same bytes under a lenient decoder
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(sig[-1])
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last ^ 1]
    variants = [sig + "~~~", sig[:8] + "\t" + sig[8:], sig + "*" * 40, sig + "=", sig[:-1] + sibling,
                sig.replace("-", "+").replace("_", "/") if ("-" in sig or "_" in sig) else sig + "!"]
    with httpx.Client(base_url=relays.url, timeout=5) as c:
        for v in variants:
            r = c.post("/gpio/relay1", json={"state": "HIGH"},
                       headers={"Authorization": "Bearer %s.%s.%s" % (head, body, v)})
            assert r.status_code == 401, (v, r.text)
            assert r.json()["detail"] == "malformed"
        assert c.get("/gpio/relay1", headers=auth(token)).json()["state"] == "LOW"


def test_query_token_is_read_only_on_a_websocket_upgrade(relays, sensors):
    token = make_token()
    r = httpx.get(relays.url + "/gpio", params={"token": token}, timeout=5)
    assert r.status_code == 401 and r.json()["detail"] == "missing bearer token"
    s, head = ws_connect(sensors, token=token)  # the browser's way in still works
    s.close()
    assert head.startswith(b"HTTP/1.1 101"), head


# -- 2: long request lines and paths ------------------------------------------------------


def test_long_paths_get_414_and_the_socket_is_closed(relays):
    before = open_fds(relays)
    for n in (300, 1000, 4000):
        reply = raw(relays, b"GET /gpio/" + b"a" * n + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(reply) == 414, reply[:200]
        assert json_body(reply)["error"] == "uri_too_long"
    for _ in range(20):
        assert status_of(raw(relays, b"GET /gpio/" + b"b" * 1000 + b" HTTP/1.1\r\n\r\n")) == 414
    # a request line that never ends is cut at the bound, not buffered
    assert status_of(raw(relays, b"GET /" + b"c" * 12000)) == 414
    time.sleep(0.3)
    assert open_fds(relays) <= before + 1
    assert httpx.get(relays.url + "/health/livez", timeout=5).status_code == 200
    assert "maximum recursion" not in relays.output()


def test_broken_requests_get_an_answer_and_a_close(relays):
    for data, status in ((b"GARBAGE\r\n\r\n", 400), (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
                         (b"POST /gpio HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
                         (b"POST /gpio HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", 413),
                         (b"POST /gpio HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
                         (b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 1100 + b"\r\n" * 3, 431)):
        reply = raw(relays, data)
        assert status_of(reply) == status, (data[:40], reply[:120])
        assert "error" in json_body(reply)


# -- 3: the per-address limit is per address --------------------------------------------


def test_one_address_flooding_does_not_limit_another(role_device):
    d = role_device("relays", relays=RELAYS,
                    rate_limit={"per_token_rps": 100, "per_address_rps": 5, "burst": 5})
    bad = b"GET /gpio HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n"
    statuses = [status_of(raw(d, bad, source="127.0.5.1")) for _ in range(12)]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    transport = httpx.HTTPTransport(local_address="127.0.5.2")
    with httpx.Client(transport=transport, base_url=d.url, timeout=5) as c:
        r = c.get("/gpio", headers=auth())
        assert r.status_code == 200, r.text


# -- 4: failed authentication cannot flush the audit trail -------------------------------


def test_auth_failures_are_summarised_and_never_evict_a_command_record(relays):
    with httpx.Client(base_url=relays.url, timeout=5) as c:
        assert c.post("/gpio/relay2", json={"state": "HIGH"}, headers=auth()).status_code == 200
        garbage = {"Authorization": "Bearer " + "x" * 200 + ".y.z"}
        for _ in range(450):
            assert c.get("/gpio", headers=garbage).status_code == 401
    logs = relays.dir / "logs"
    trail = b"".join(p.read_bytes() for p in sorted(logs.glob("audit.log*")) if p.is_file())
    assert b'"relay_command"' in trail and b"relay2" in trail
    assert b"auth_denied" not in trail
    denials = (logs / "auth.log").read_text().splitlines()
    assert 1 <= len(denials) <= 2, denials  # the first in full; the rest folded into a summary
    assert '"reason":"malformed"' in denials[0] and "127.0.0.1" in denials[0]
    assert relays.metric("iot_http_auth_denied_total") == 450


# -- 5: WebSocket, RFC 6455 ------------------------------------------------------------


def ws_connect(device, version="13", token=None):
    s = socket.create_connection(("127.0.0.1", device.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n\r\n"
               % (token or make_token(), key, version)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    return s, head


def frame(opcode, payload, mask=True, rsv=0, fin=True):
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    head = bytes([b0, (0x80 if mask else 0) | n]) if n < 126 else \
        bytes([b0, (0x80 if mask else 0) | 126]) + struct.pack(">H", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_rest(s):
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except (ConnectionResetError, socket.timeout):
        return out


def close_code(data):
    """The code of the first close frame in what the server sent (its frames are unmasked)."""
    i = 0
    while i + 2 <= len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n = struct.unpack(">H", data[i:i + 2])[0]
            i += 2
        if op == 8:
            return struct.unpack(">H", data[i:i + 2])[0]
        i += n
    return None


@pytest.mark.parametrize("bad,code", [
    (frame(1, b"\xff\xfe ok"), 1007),
    (frame(1, b'{"fields": null}', mask=False), 1002),
    (frame(1, b'{"fields": null}', rsv=0x40), 1002),
    (frame(9, b"x", fin=False), 1002),
    (frame(0, b"orphan continuation"), 1002),
    (frame(3, b"reserved opcode"), 1002),
])
def test_websocket_protocol_errors_close_with_the_rfc_code_and_nothing_after(sensors, bad, code):
    s, head = ws_connect(sensors)
    assert head.startswith(b"HTTP/1.1 101"), head
    s.sendall(bad)
    rest = read_rest(s)
    s.close()
    assert close_code(rest) == code, rest
    assert b"HTTP/1.1" not in rest


def test_websocket_truncated_frame_then_half_close_gets_no_http_in_the_stream(sensors):
    s, head = ws_connect(sensors)
    assert head.startswith(b"HTTP/1.1 101")
    s.sendall(frame(1, b'{"fields": null}')[:5])
    s.shutdown(socket.SHUT_WR)
    rest = read_rest(s)
    s.close()
    assert b"HTTP/1.1" not in rest and b"500" not in rest
    assert httpx.get(sensors.url + "/health/livez", timeout=5).status_code == 200


def test_websocket_version_other_than_13_is_426(sensors):
    s, head = ws_connect(sensors, version="8")
    s.close()
    assert head.startswith(b"HTTP/1.1 426"), head
    assert b"Sec-WebSocket-Version: 13" in head


def test_websocket_ping_flood_is_cut_off_and_the_heap_comes_back(sensors):
    start = sensors.metric("iot_heap_free_after_gc_bytes")
    s, head = ws_connect(sensors)
    assert head.startswith(b"HTTP/1.1 101")
    ping = frame(9, b"p" * 100)
    rest = b""
    s.setblocking(False)
    try:  # pings back to back, never waiting for a pong; what came back is read in between
        for _ in range(2000):
            s.sendall(ping)
            if select.select([s], [], [], 0.002)[0]:
                rest += s.recv(65536)
            if close_code(rest):
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.setblocking(True)
    rest += read_rest(s)
    s.close()
    assert close_code(rest) == 1008, rest[-40:]
    pongs = rest.count(b"\x8a\x64")
    assert 1 <= pongs <= 12  # the burst is answered, then the flood is refused
    # and a well-behaved client still gets its pongs and its answers
    s, head = ws_connect(sensors)
    s.sendall(frame(9, b"hi") + frame(1, b'{"fields": null}'))
    got = b""
    while b"subscribed" not in got:
        got += s.recv(4096)
    assert got.startswith(b"\x8a\x02hi")
    s.sendall(frame(8, b"\x03\xe8"))
    assert close_code(read_rest(s)) == 1000
    s.close()
    end = sensors.metric("iot_heap_free_after_gc_bytes")
    assert end >= start - 16 * 1024, (start, end)


# -- 6: idle, head and body deadlines; a bounded number of connections --------------------


def test_idle_and_slow_connections_are_closed_at_their_deadlines(relays):
    s = socket.create_connection(("127.0.0.1", relays.port), timeout=5)
    t0 = time.time()
    assert s.recv(4096).startswith(b"HTTP/1.1 408")  # idle: nothing sent
    assert s.recv(4096) == b""
    assert 0.8 <= time.time() - t0 <= 3
    s.close()
    # a body shorter than its Content-Length
    reply = raw(relays, b"POST /gpio HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    assert status_of(reply) == 408
    # slowloris: one header byte at a time, forever
    s = socket.create_connection(("127.0.0.1", relays.port), timeout=5)
    s.sendall(b"GET /gpio HTTP/1.1\r\n")
    t0 = time.time()
    try:
        while time.time() - t0 < 6:
            s.sendall(b"X")
            time.sleep(0.2)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert time.time() - t0 < 4
    s.close()
    assert relays.metric("iot_http_timeouts_total") >= 3


def test_200_idle_sockets_do_not_lock_out_a_real_client(relays):
    before = open_fds(relays)
    idle = []

    def dropped():
        return relays.metric("iot_http_connections_evicted_total") + \
            relays.metric("iot_http_timeouts_total")
    try:
        for _ in range(200):  # opened at once (the kernel finishes the handshakes)
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", relays.port))
            idle.append(s)
        # as many as get past the listen backlog reach the device and are dropped in turn
        wait_for("idle sockets dropped", lambda: dropped() >= 30, timeout=20)
        with httpx.Client(base_url=relays.url, timeout=5) as c:
            for _ in range(10):
                assert c.get("/health/livez").status_code == 200
                assert c.get("/gpio", headers=auth()).status_code == 200
        # the device ends up holding at most its slots (4), not 200 sockets (sockets it
        # has accepted but not yet given a slot count until their task runs)
        wait_for("fds back to the slots", lambda: open_fds(relays) <= before + 6, timeout=20)
    finally:
        for s in idle:
            s.close()


# -- 9: the real relay state is reported after a restart ------------------------------


def test_after_sigkill_the_real_relay_state_is_reported_before_desired_is_applied(tmp_path):
    fleet = Fleet(tmp_path, {"heartbeat_s": 5})
    fleet.start()
    try:
        creds = fleet.provision("hard-relays-1", E2E_TENANT, E2E_NAMESPACE, "relays")
        d = RoleDevice(tmp_path, "relays", device_id="hard-relays-1", device_key=creds["device_key"],
                       api_key=creds["api_key"], tenant=E2E_TENANT, namespace=E2E_NAMESPACE,
                       service_discovery_url=fleet.url + "/devices", config_poll_s=1,
                       state_poll_s=1, restore_desired=True, relays=RELAYS)
        d.start()
        admin = {"Authorization": "Bearer " + fleet.admin(
            "token", "--tenant", E2E_TENANT, "--namespace", E2E_NAMESPACE, "--role", "admin")["token"]}

        def reported():
            return fleet.admin("state-get", "--id", "hard-relays-1")["reported"].get("relays", {})
        wait_for("registered", lambda: httpx.get(d.url + "/health/readyz").status_code == 200)
        r = httpx.post(d.url + "/gpio/relay1", json={"state": "HIGH"}, headers=admin, timeout=5)
        assert r.status_code == 200, r.text
        wait_for("reported HIGH", lambda: reported().get("relay1") == "HIGH")
        d.proc.kill()
        d.proc.wait()
        d._out.close()
        d.start()
        assert httpx.get(d.url + "/gpio", headers=admin).json()["relays"]["relay1"] == "LOW"
        wait_for("reported LOW after the restart", lambda: reported().get("relay1") == "LOW",
                 timeout=8)
        d.stop()
    finally:
        fleet.stop()
