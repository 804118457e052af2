# Run by tests/library/test_network_manager.py; ARGS: the probe port.
import asyncio, json, os, time
from iotlib.network_manager import NetworkManager
from iotlib.link_sim import SimLink
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
link = SimLink(control_file="link")
net = NetworkManager("SSID", "PASSWORD", link=link, probe=("127.0.0.1", ARGS["port"]), check_ms=50,
                     connect_timeout_ms=100, backoff_min_ms=40, backoff_max_ms=200)
events = []
net.on_change(lambda up: events.append(up))
def write(state):
    with open("link", "w") as f: f.write(state)
async def main():
    print(await net.connect(), link.pm, net.down.is_set())
    await net.start()
    write("down")
    await net.down.wait()
    delays = []
    while len(delays) < 5:
        await asyncio.sleep_ms(20)
        if net.last_delay_ms and (not delays or delays[-1] != net.last_delay_ms):
            delays.append(net.last_delay_ms)
    print(net.is_up(), net.failures >= 4, delays)
    write("up")
    t = time.ticks_ms()
    await net.wait_up()
    print(net.is_up(), net.failures, time.ticks_diff(time.ticks_ms(), t) < 1000, events)
    await net.stop()
    link.drop()
    print(await net.reachable(), await net.connect(timeout_ms=100))
    link.restore()
    print(await net.connect(timeout_ms=100))
asyncio.run(main())
