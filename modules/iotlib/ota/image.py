# The staged image of a full-image update (docs/ota.md, "Full image swap"): an ordinary file in
# the filesystem, `<root>/image.z` (firmware/loader/layout.h IOT_STAGE_PATH: "ota/image.z"),
# which the loader reads at the next reset, inflates, checks and installs. The file is what
# `firmware/pack_image.py sign` makes: a 128-byte header, then the image as a raw deflate stream.
#
#   stage = hal.staging("ota")         # iotlib.hal: the loader's boot state through _iotimage
#                                      # on rp2, a simulated one (files) elsewhere
#   stage.check_header(first_bytes) -> dict  refuse a file that is not a format-2 stage (ValueError)
#   stage.install(part_path) -> dict   check a whole downloaded file, rename it into place (atomic)
#   stage.staged() -> dict or None     the header of the file in place
#   stage.after_boot() -> verdict      what the loader did with the file at this boot; the file
#                                      is deleted unless the verdict is "none" (it has served)
#   stage.free_bytes()                 room left in the filesystem for a download
#   stage.boot_mode() -> "normal" | "trial" | "safe" | "none";  stage.confirm()
#   stage.trial_boots()                the loader's count of this image's trial boots (it owns
#                                      the count; the application only reads it)
#   stage.APP_SIZE                     the application region (layout.h IOT_APP_SIZE)
#
# Without the loader (unix simulation, or an rp2 image built without it) the boot state is
# simulated: the mode is the word in <root>/image_mode ("none" without the file), confirm()
# writes "normal" there, and the verdict is always "none" (nothing ever installs the file: the
# simulation stops at staging).
import binascii
import hashlib
import os
import struct

# the numbers are layout.h's: iotlib.ota.layout is generated from it at build time
from iotlib.ota.layout import (APP_SIZE, STAGE_FORMAT as FORMAT, STAGE_HDR_SIZE as HEADER_SIZE,
                               STAGE_MAGIC as MAGIC, STAGE_PATH, STAGE_WINDOW as WINDOW)
from iotlib.storage import exists, makedirs, remove


def parse_header(head):
    """The fields of a staged file's header (ValueError if it is not one)."""
    if len(head) < HEADER_SIZE:
        raise ValueError("%d bytes: shorter than the %d-byte image header" % (len(head), HEADER_SIZE))
    head = bytes(head[:HEADER_SIZE])
    magic, fmt, size, stream, window = struct.unpack_from("<8sIIII", head)
    if magic != MAGIC or fmt != FORMAT:
        raise ValueError("not a format-%d image (magic %r, format %d)" % (FORMAT, magic, fmt))
    if hashlib.sha256(head[:96]).digest() != head[96:]:
        raise ValueError("image header hash does not match")
    if not 0 < size <= APP_SIZE:
        raise ValueError("image of %d bytes: the application region holds %d" % (size, APP_SIZE))
    if not 0 < window <= WINDOW:
        raise ValueError("deflate window %d: the loader has %d" % (window, WINDOW))
    return {"image_size": size, "stream_size": stream,
            "sha256": binascii.hexlify(head[24:56]).decode(),
            "version": head[56:72].rstrip(b"\0").decode()}


class ImageStage:
    APP_SIZE = APP_SIZE

    def __init__(self, root="ota", loader=None):
        self.root = root
        self.path = root + "/" + STAGE_PATH.rsplit("/", 1)[1]  # root "ota": the loader's path
        self._loader = loader  # the _iotimage module, or None: simulated boot state

    # ---- the loader's word at this boot ------------------------------------------------

    def boot_mode(self):
        if self._loader is not None:
            return self._loader.boot_mode()
        try:
            with open(self.root + "/image_mode") as f:
                return f.read().strip() or "none"
        except OSError:
            return "none"

    def trial_boots(self):
        if self._loader is not None:
            return self._loader.trial_boots()
        return 1 if self.boot_mode() == "trial" else 0

    def confirm(self):
        if self._loader is not None:
            self._loader.confirm()
        elif self.boot_mode() == "trial":
            with open(self.root + "/image_mode", "w") as f:
                f.write("normal")

    def verdict(self):
        return self._loader.stage_verdict() if self._loader is not None else "none"

    def after_boot(self):
        """Delete the staged file once the loader has dealt with it (installed or refused):
        the loader cannot write the filesystem. Returns the verdict."""
        v = self.verdict()
        if v != "none":
            remove(self.path)
        return v

    # ---- the staged file ---------------------------------------------------------------

    def free_bytes(self):
        makedirs(self.root)
        st = os.statvfs(self.root)
        return st[0] * st[4]  # f_bsize * f_bavail (MicroPython's littlefs: blocks not in use)

    def check_header(self, head):
        return parse_header(head)

    def install(self, part):
        """Put a downloaded (and hash-checked) file in place for the loader: header and length
        checked, then one rename, so the loader sees either no file or the whole one."""
        with open(part, "rb") as f:
            info = parse_header(f.read(HEADER_SIZE))
            f.seek(0, 2)
            length = f.tell()
        if length != HEADER_SIZE + info["stream_size"]:
            raise ValueError("image file is %d bytes, its header says %d"
                             % (length, HEADER_SIZE + info["stream_size"]))
        remove(self.path)
        os.rename(part, self.path)
        return info

    def staged(self):
        if not exists(self.path):
            return None
        with open(self.path, "rb") as f:
            try:
                return parse_header(f.read(HEADER_SIZE))
            except ValueError:
                return None
