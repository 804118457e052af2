# In-memory streams for driving the HTTP server in process (no network stack on the plain Pico
# board): Reader hands a request's bytes over as the socket stream would, Writer keeps the reply.
class Reader:  # the request's bytes, as the socket stream hands them to the HTTP server
    def __init__(self, data): self.data = data
    async def readinto(self, buf): return self._take(len(buf), buf)
    async def readexactly(self, n): return bytes(self._take(n, None))
    def _take(self, n, buf):
        n = min(n, len(self.data)); part = self.data[:n]; self.data = self.data[n:]
        if buf is None: return part
        buf[:n] = part; return n

class Writer:
    def __init__(self): self.data = b""
    async def awrite(self, b): self.data += bytes(b)
    async def aclose(self): pass
    def get_extra_info(self, what): return ("10.0.0.2", 40000)
