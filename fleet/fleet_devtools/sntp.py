"""A minimal SNTP server on 127.0.0.1 (RFC 4330 server mode), for the device tests and for
`make sim`, whose devices sync from it instead of asking the internet's pool.ntp.org."""
import socket
import struct
import threading
import time

NTP_DELTA = 2208988800  # seconds from 1900-01-01 (NTP's era) to 1970-01-01


class SntpResponder:
    """A minimal SNTP server on 127.0.0.1: its clock is ours + offset_s, running fast by ppm."""

    def __init__(self, offset_s=0.0, ppm=0.0, stratum=2):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.offset_s, self.ppm, self.stratum = offset_s, ppm, stratum
        self.t0 = time.time()
        self.answered = 0
        self.answering = True   # False: requests go unanswered (a server not reachable yet)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def now(self):
        t = time.time()
        return t + self.offset_s + (t - self.t0) * self.ppm * 1e-6

    @staticmethod
    def _ts(t):
        secs = int(t)
        return secs + NTP_DELTA, int((t - secs) * 2**32) & 0xFFFFFFFF

    def _serve(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 48 or data[0] & 7 != 3 or not self.answering:
                continue
            t2 = self.now()
            reply = bytearray(48)
            reply[0] = (0 << 6) | (4 << 3) | 4
            reply[1] = self.stratum
            reply[24:32] = data[40:48]                 # originate = client's transmit
            struct.pack_into("!II", reply, 16, *self._ts(t2))
            struct.pack_into("!II", reply, 32, *self._ts(t2))
            struct.pack_into("!II", reply, 40, *self._ts(self.now()))
            self.sock.sendto(bytes(reply), addr)
            self.answered += 1

    def close(self):
        self.running = False
        self.sock.close()
        self.thread.join(2)
