# The staging area for full-image updates (docs/ota.md, "Full image swap"), one API on both
# builds:
#
#   stage = image_stage.open_stage()   # _iotimage on rp2 (loader build), FileStage elsewhere
#   stage.begin(); stage.write(i, chunk) ...; stage.commit(size, sha256_bytes, version) -> bool
#   stage.read(i, buf) -> n  (sector i back into buf: a resumed download re-hashes it)
#   stage.buffer()           the stage's one sector-sized buffer, reused by read and commit
#   stage.boot_mode() -> "normal" | "trial" | "safe" | "none";  stage.trial_boots();  stage.confirm()
#   stage.APP_SIZE, stage.SECTOR_SIZE
#
# FileStage simulates the staging area with files (unix simulation, or an rp2 image built
# without the loader): bytes in <root>/stage.bin, the header last in <root>/header.json. There
# is no loader behind it: a committed image is never installed, the simulation stops at
# staging. Its boot mode is the word in <root>/boot_mode ("none" without the file), so tests
# can start a simulated device in "trial" or "safe" mode; confirm() writes "normal" there.
import binascii
import hashlib
import json

from iotlib.storage import exists, makedirs, remove

APP_SIZE = 0x92000  # 584 KB, firmware/loader/layout.h IOT_APP_SIZE
SECTOR_SIZE = 4096


class FileStage:
    APP_SIZE = APP_SIZE
    SECTOR_SIZE = SECTOR_SIZE

    def __init__(self, root="ota/image"):
        self.root = root
        self._buf = None  # one sector, allocated on the first commit and reused

    def _path(self, name):
        return self.root + "/" + name

    def boot_mode(self):
        try:
            with open(self._path("boot_mode")) as f:
                return f.read().strip() or "none"
        except OSError:
            return "none"

    def trial_boots(self):
        return 1 if self.boot_mode() == "trial" else 0

    def confirm(self):
        if self.boot_mode() == "trial":
            with open(self._path("boot_mode"), "w") as f:
                f.write("normal")

    def begin(self):
        makedirs(self.root)
        remove(self._path("header.json"))
        open(self._path("stage.bin"), "wb").close()

    def write(self, index, data):
        if not 0 <= index < APP_SIZE // SECTOR_SIZE or len(data) > SECTOR_SIZE:
            raise ValueError("sector %d / %d bytes outside the staging area" % (index, len(data)))
        with open(self._path("stage.bin"), "r+b") as f:
            f.seek(index * SECTOR_SIZE)
            f.write(data)

    def read(self, index, buf):
        """Up to one sector of staged bytes into buf; the count (short past the end)."""
        if not 0 <= index < APP_SIZE // SECTOR_SIZE:
            raise ValueError("sector %d outside the staging area" % index)
        if len(buf) > SECTOR_SIZE:
            buf = memoryview(buf)[:SECTOR_SIZE]
        try:
            with open(self._path("stage.bin"), "rb") as f:
                f.seek(index * SECTOR_SIZE)
                return f.readinto(buf) or 0
        except OSError:
            return 0

    def buffer(self):
        if self._buf is None:
            self._buf = bytearray(SECTOR_SIZE)
        return self._buf

    def commit(self, size, sha256, version):
        """Hash the staged bytes; if they match, write the header (what the loader installs)."""
        if not 0 < size <= APP_SIZE:
            return False
        buf, h, left = self.buffer(), hashlib.sha256(), size
        try:
            with open(self._path("stage.bin"), "rb") as f:
                while left:
                    n = f.readinto(memoryview(buf)[:min(left, SECTOR_SIZE)])
                    if not n:
                        return False
                    h.update(memoryview(buf)[:n])
                    left -= n
        except OSError:
            return False
        if h.digest() != bytes(sha256):
            return False
        with open(self._path("header.tmp"), "w") as f:
            json.dump({"size": size, "sha256": binascii.hexlify(sha256).decode(),
                       "version": version}, f)
        import os
        os.rename(self._path("header.tmp"), self._path("header.json"))
        return True

    def staged(self):
        """The committed header (dict) or None."""
        if not exists(self._path("header.json")):
            return None
        with open(self._path("header.json")) as f:
            return json.load(f)


class LoaderStage:
    """The real staging area in flash, through the loader's _iotimage module."""

    def __init__(self, mod):
        self._m = mod
        self.APP_SIZE = mod.APP_SIZE
        self.SECTOR_SIZE = mod.SECTOR_SIZE
        self._buf = None

    def boot_mode(self):
        return self._m.boot_mode()

    def trial_boots(self):
        return self._m.trial_boots()

    def confirm(self):
        self._m.confirm()

    def begin(self):
        self._m.stage_begin()

    def write(self, index, data):
        self._m.stage_write(index, data)

    def read(self, index, buf):
        return self._m.stage_read(index, buf)

    def buffer(self):
        if self._buf is None:  # only a resumed download needs it
            self._buf = bytearray(self.SECTOR_SIZE)
        return self._buf

    def commit(self, size, sha256, version):
        return self._m.stage_commit(size, sha256, version)


def open_stage(root="ota/image"):
    try:
        import _iotimage
    except ImportError:
        return FileStage(root)
    if _iotimage.boot_mode() == "none":  # a loader build started without its loader
        return FileStage(root)
    return LoaderStage(_iotimage)
