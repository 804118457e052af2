# The guest's probe of what it can reach (run by tests/picow/test_picow_e2e.py);
# ARGS: the SSID, the loopback echo server's TCP and UDP ports.
import network, socket, time
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect(ARGS["ssid"], "any-password")
t = time.ticks_ms()
while not w.isconnected() and time.ticks_diff(time.ticks_ms(), t) < 20000:
    time.sleep_ms(20)
print("joined", w.isconnected(), w.ifconfig()[0], w.ifconfig()[2])

def tcp(host, port):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        s.send(b"hi")
        return "reached:" + s.recv(64).decode()
    except OSError as e:
        return "failed:%s" % e.args[0]
    finally:
        s.close()

for host, port in (("8.8.8.8", 53), ("1.1.1.1", 443), ("8.8.8.8", 80)):
    print("tcp", host, port, tcp(host, port))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(0.3)
for host, port in (("8.8.8.8", 53), ("1.1.1.1", 53), ("1.1.1.1", 123)):
    u.sendto(b"query", (host, port))
try:
    print("udp public", "answered", u.recvfrom(64))
except OSError as e:
    print("udp public", "nothing:%s" % e.args[0])
for name in ("example.com", "dns.google"):
    try:
        print("dns", name, "resolved", socket.getaddrinfo(name, 80)[0][-1])
    except OSError as e:
        print("dns", name, "failed:%s" % e.args[0])
print("tcp gateway", tcp("10.0.0.1", ARGS["tcp_port"]))
u.settimeout(3)
for attempt in range(3):  # UDP may be lost; a client retries, as SNTP does
    u.sendto(b"ping", ("10.0.0.1", ARGS["udp_port"]))
    try:
        data, addr = u.recvfrom(64)
        print("udp gateway", data.decode(), addr[0], addr[1])
        break
    except OSError as e:
        print("udp gateway attempt", attempt, "failed:%s" % e.args[0])
u.close()
w.disconnect()
