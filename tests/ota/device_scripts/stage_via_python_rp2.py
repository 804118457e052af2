# OTAUpdateManager with the real stage and a stand-in HTTP client reading littlefs; run by tests/ota/test_image_rp2.py.
import json, machine, os
from iotlib.ota.bundle import BundleStore
from iotlib import hal
from iotlib.ota.manager import OTAUpdateManager

class Response:
    def __init__(self, status, body):
        self.status, self.body = status, body

class FileHttp:
    def __init__(self, path):
        self.f = open(path, "rb")
        self.buf = bytearray(4096)
    async def request(self, method, url, headers=None):
        a, b = [int(x) for x in headers["Range"][6:].split("-")]
        self.f.seek(a)
        n = self.f.readinto(memoryview(self.buf)[:b + 1 - a])
        return Response(206, memoryview(self.buf)[:n])

stage = hal.load().staging()
mgr = OTAUpdateManager("http://fleet/api", device_id="emu-1", http=FileHttp("/v2.image"),
                       store=BundleStore("ota"), factory_version="1.0.0", image=stage, reset=machine.reset,
                       alarm=lambda *a: print("ALARM", a[0], a[2]))
import asyncio
