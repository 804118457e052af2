"""SensorsController on the unix build: the `websockets` package as the client."""
import asyncio
import json
import socket
import subprocess
import time

import httpx
import pytest
import websockets

from harness.run import run_unix
from harness.scripts import device_script
from harness.role_device import auth, make_token

pytestmark = pytest.mark.unix

FIELDS = {"temp_sim": {"source": "sim", "rate_hz": 50},
          "slow": {"source": "sim", "rate_hz": 2},
          "volts": {"source": "adc0", "rate_hz": 10}}


@pytest.fixture
def sensors(role_device):
    return role_device("sensors", fields=FIELDS, max_clients=3, client_rps=2, client_burst=3)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def subscribe(ws, *fields):
    await ws.send(json.dumps({"subscribe": list(fields)}))
    while True:
        msg = json.loads(await ws.recv())
        if "subscribed" in msg:
            return msg


def test_no_token_is_refused_before_the_upgrade(sensors):
    async def go():
        for url, status in ((sensors.ws_url, 401),
                            (sensors.ws_url + "?token=garbage", 401),
                            (sensors.ws_url + "?token=" + make_token(tenant="other"), 403),
                            (sensors.ws_url + "?token=" + make_token(role="nobody"), 403)):
            with pytest.raises(websockets.InvalidStatus) as exc:
                async with websockets.connect(url):
                    pass
            assert exc.value.response.status_code == status, url
            assert json.loads(exc.value.response.body)["error"] in ("unauthorized", "forbidden")
    run(go())


def test_frames_received_with_token_in_query_or_header(sensors):
    async def go():
        url = sensors.ws_url + "?token=" + make_token(role="viewer")
        async with websockets.connect(url) as ws:
            reply = await subscribe(ws, "temp_sim")
            assert reply["subscribed"] == ["temp_sim"] and set(reply["fields"]) == set(FIELDS)
            frames = [json.loads(await ws.recv()) for _ in range(10)]
        assert all(f["field"] == "temp_sim" for f in frames)
        assert all(15 <= f["value"] <= 25 for f in frames)
        assert [f["ts"] for f in frames] == sorted(f["ts"] for f in frames)
        async with websockets.connect(sensors.ws_url, additional_headers=auth()) as ws:
            await subscribe(ws, "slow", "temp_sim")
            seen = set()
            while seen != {"slow", "temp_sim"}:
                seen.add(json.loads(await ws.recv())["field"])
            await ws.send(json.dumps({"unsubscribe": ["temp_sim"]}))
            reply = await subscribe(ws)  # an empty subscribe returns the current set
            assert reply["subscribed"] == ["slow"]
    run(go())


def test_bad_messages_get_json_errors(sensors):
    async def go():
        async with websockets.connect(sensors.ws_url, additional_headers=auth()) as ws:
            await ws.send("not json")
            assert json.loads(await ws.recv())["error"] == "bad_request"
            await asyncio.sleep(0.6)
            await ws.send(json.dumps({"subscribe": ["nope"]}))
            assert json.loads(await ws.recv()) == {"error": "not_found",
                                                   "detail": "unknown field nope"}
    run(go())


def test_per_client_rate_limit_enforced(sensors):
    async def go():
        async with websockets.connect(sensors.ws_url, additional_headers=auth()) as ws:
            for _ in range(8):
                await ws.send(json.dumps({"fields": None}))
            replies = [json.loads(await ws.recv()) for _ in range(8)]
            ok = [r for r in replies if "subscribed" in r]
            limited = [r for r in replies if r.get("error") == "rate_limited"]
            assert len(ok) == 3 and len(limited) == 5  # burst 3
            assert limited[0]["retry_after"] >= 1
            await asyncio.sleep(1.1)  # 2 messages per second refill
            await ws.send(json.dumps({"fields": None}))
            assert "subscribed" in json.loads(await ws.recv())
    run(go())


def test_max_clients_then_503(sensors):
    async def go():
        conns = [await websockets.connect(sensors.ws_url, additional_headers=auth())
                 for _ in range(3)]
        with pytest.raises(websockets.InvalidStatus) as exc:
            async with websockets.connect(sensors.ws_url, additional_headers=auth()):
                pass
        assert exc.value.response.status_code == 503
        await conns[0].close()
        await asyncio.sleep(0.2)
        async with websockets.connect(sensors.ws_url, additional_headers=auth()) as ws:
            await subscribe(ws, "slow")
        for c in conns[1:]:
            await c.close()
    run(go())
    assert sensors.metric("iot_ws_refused_total") == 1


def test_ping_pong_and_clean_close(sensors):
    async def go():
        ws = await websockets.connect(sensors.ws_url, additional_headers=auth())
        latency = await ws.ping()
        await asyncio.wait_for(latency, 5)
        await ws.close()
        assert ws.close_code == 1000
        await asyncio.sleep(0.2)
    run(go())
    assert sensors.metric("iot_ws_clients") == 0


def test_slow_client_does_not_stall_a_fast_one(role_device):
    d = role_device("sensors", fields={"fast": {"source": "sim", "rate_hz": 100}},
                    queue_size=8, ws_sndbuf=2048)

    async def go():
        # the slow client: tiny receive buffer and it never reads
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        raw.connect(("127.0.0.1", d.port))
        slow = await websockets.connect(d.ws_url, sock=raw, additional_headers=auth(),
                                        max_queue=1, ping_interval=None)
        await subscribe(slow, "fast")
        slow.transport.pause_reading()
        fast = await websockets.connect(d.ws_url, additional_headers=auth())
        await subscribe(fast, "fast")
        await fast.recv()
        sampled = await asyncio.to_thread(d.metric, "iot_sensor_samples_total")
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 4:
            json.loads(await fast.recv())
            n += 1
        sampled = await asyncio.to_thread(d.metric, "iot_sensor_samples_total") - sampled
        await fast.close()
        slow.transport.abort()
        return n, sampled
    n, sampled = run(go())
    # the fast client got (all but the frames still in flight) every sample the device took
    # in those 4 s, while the slow client's queue overflowed
    assert sampled > 200 and n >= sampled - 10, (n, sampled)
    assert d.metric("iot_ws_dropped_frames_total") > 0  # the slow one lost frames, counted
    assert httpx.get(d.url + "/health/livez").status_code == 200


def test_rest_latest_values_health_and_metrics_with_curl(sensors):
    time.sleep(0.3)
    out = subprocess.run(["curl", "-s", "-H", "Authorization: Bearer " + make_token(),
                          sensors.url + "/sensors"], capture_output=True, text=True,
                         timeout=10).stdout
    body = json.loads(out)
    assert set(body["fields"]) == set(FIELDS) and body["clients"] == 0
    for path in ("/health/livez", "/health/readyz", "/metrics"):
        code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               sensors.url + path], capture_output=True, text=True).stdout
        assert code == "200", path
    assert sensors.metric("iot_sensor_samples_total") > 5
    r = httpx.get(sensors.url + "/ws", headers=auth())  # no upgrade headers
    assert r.status_code == 400 and r.json()["error"] == "bad_request"


def test_thresholds_raise_one_alarm_per_crossing_and_adc_volts():
    out = run_unix("\n" + device_script(__file__, "sensors_thresholds_and_volts.py"))
    assert "v 1.65" in out and "v 3.2227" in out
    assert ("alarms [('threshold_high', 'v'), ('threshold_low', 'v'), "
            "('threshold_high', 'v')] 3") in out
    assert "cleared ['threshold_high', 'threshold_low']" in out  # back in band; low straight to high
    assert "vetoed sensors.fields.v.source" in out and "kept ['v']" in out


def _raw_ws(port, token):
    """A WebSocket client on a plain socket (it never answers pings by itself)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Authorization: Bearer %s\r\n\r\n" % token).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def _read_frame(s):
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data
    b0, b1 = exactly(2)
    n = b1 & 0x7f
    if n == 126:
        n = int.from_bytes(exactly(2), "big")
    elif n == 127:
        n = int.from_bytes(exactly(8), "big")
    return b0 & 0x0f, exactly(n)


def _send_frame(s, opcode, payload):
    mask = b"\x01\x02\x03\x04"
    s.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
              + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def test_server_pings_and_closes_a_client_that_does_not_answer(role_device):
    d = role_device("sensors", fields={"slow": {"source": "sim", "rate_hz": 2}},
                    ping_s=1, pong_timeout_s=0.5)
    silent = _raw_ws(d.port, make_token())
    answering = _raw_ws(d.port, make_token())
    t0 = time.monotonic()
    assert _read_frame(silent) == (9, b"ka")  # the server's ping; never answered
    opcode, payload = _read_frame(answering)
    assert opcode == 9
    _send_frame(answering, 10, payload)  # pong
    opcode, payload = _read_frame(silent)  # closed for the missing pong, code 1011
    assert (opcode, payload[:2]) == (8, b"\x03\xf3")
    assert time.monotonic() - t0 < 3
    with pytest.raises(EOFError):
        _read_frame(silent)
    silent.close()
    # the client that answers stays: more pings come, it answers, it is still served
    for _ in range(2):
        opcode, payload = _read_frame(answering)
        assert opcode == 9
        _send_frame(answering, 10, payload)
    _send_frame(answering, 1, b'{"fields": null}')
    opcode, payload = _read_frame(answering)
    assert opcode == 1 and "subscribed" in json.loads(payload)
    assert d.metric("iot_ws_ping_timeouts_total") == 1
    assert d.metric("iot_ws_clients") == 1
    assert d.metric("iot_ws_pings_total") >= 4
    answering.close()


def test_websockets_client_answers_server_pings_and_stays(role_device):
    d = role_device("sensors", fields={"slow": {"source": "sim", "rate_hz": 2}},
                    ping_s=0.5, pong_timeout_s=0.25)

    async def go():
        async with websockets.connect(d.ws_url, additional_headers=auth(),
                                      ping_interval=None) as ws:
            await subscribe(ws, "slow")
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.5:  # 5 pings, each answered by websockets
                assert json.loads(await ws.recv())["field"] == "slow"
            assert await asyncio.to_thread(d.metric, "iot_ws_clients") == 1
    run(go())
    assert d.metric("iot_ws_pings_total") >= 4
    assert d.metric("iot_ws_ping_timeouts_total") == 0


def test_keepalive_rounds_do_not_grow_the_heap():
    out = run_unix("\n" + device_script(__file__, "sensors_keepalive_heap.py"))
    grown = int(out.split("grown ")[1].split()[0])
    assert grown <= 0, out  # nothing kept per ping: 500 rounds x 4 clients
    assert "sent [520, 520, 520, 520]" in out and "pings 2080 timeouts 0" in out, out


def test_threshold_alarms_are_per_field_and_a_reload_clears_a_removed_fields_alarm():
    out = run_unix("\n" + device_script(__file__, "sensors_alarms_per_field.py"))
    assert "both [['threshold_high', 'a'], ['threshold_high', 'b']] 2" in out
    assert "a_back [['threshold_high', 'b']] [('threshold_high', 'a')]" in out
    assert "state [('b', 'high')] ['a', 'b']" in out
    assert "b_gone [] [('threshold_high', 'a'), ('threshold_high', 'b')]" in out
    assert "quiet [] 2" in out        # back in band stays quiet: nothing cleared twice
