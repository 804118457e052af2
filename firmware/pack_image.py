#!/usr/bin/env python3
"""Pack full images for the loader (firmware/loader/) and sign them for OTA.

    pack_image.py sign --key tools/iot-sign/dev-key/private.pem --version 1.3.0 \\
        [--min-version 1.2.0] --out PICO_W_IOT-RELAYS.image  build/rp2/RELAYS/firmware.bin
        -> OUT, the staged file the device writes to its littlefs and the loader installs from
           (format 2: a 128-byte header, then the image as a raw deflate stream), and OUT.json
           (manifest: kind "image", version, size, sha256 and signature of OUT, min_version),
           the same P-256 statement scheme as `iot-sign bundle`, so fleet-admin publishes it
           unchanged. The header (inside the signed bytes) carries the image's size and SHA-256.
    pack_image.py factory --loader iot_loader.bin --app firmware.bin --out factory.uf2
        -> one UF2 holding boot2 + loader at 0x10000000 and the application after it; the
           loader's binary-info header points at the application's table (picotool info).
    pack_image.py layout
        -> the flash layout (from firmware/loader/layout.h) as JSON.

The loader inflates the stream twice (verify, then copy) and, after a power cut, again from
its start, skipping the sectors it had copied: no inflater state is ever stored (docs/ota.md,
"Full image swap").
"""
import argparse
import hashlib
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
XIP_BASE = 0x10000000


def layout(path=None) -> dict:
    """The IOT_* constants of layout.h (the loader's single source of the layout), read at
    run time by firmware/loader/layout.py."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("iot_layout", os.path.join(HERE, "loader", "layout.py"))
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)
    return reader.read(path) if path else reader.read()


L = layout()
FLASH_SIZE = L["FLASH_SIZE"]


def check_app(app: bytes) -> None:
    if not app or len(app) > L["APP_SIZE"]:
        raise ValueError("application image is %d bytes; the application region holds %d"
                         % (len(app), L["APP_SIZE"]))
    sp, pc = struct.unpack_from("<II", app)
    base = XIP_BASE + L["APP_OFFSET"]
    if not (0x20000000 < sp <= 0x20042000 and base <= pc < base + len(app)):
        raise ValueError("not linked after the loader: vector table SP %#x PC %#x (expected PC in %#x..)"
                         % (sp, pc, base))


def compress(image: bytes) -> bytes:
    """The image as a raw deflate stream (no zlib header: the staging header has the hash)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return c.compress(image) + c.flush()


def stage_header(image: bytes, stream: bytes, version: str) -> bytes:
    """The staged file's header (loader stage_file.h iot_stage_hdr_t): magic, format 2, image
    size, stream size, window, SHA-256 of the image, version, zero padding, SHA-256 of the 96
    bytes before it."""
    head = struct.pack("<8sIIII32s16s24s", L["STAGE_MAGIC"].encode() + b"\0", L["STAGE_FORMAT"], len(image),
                       len(stream), L["STAGE_WINDOW"], hashlib.sha256(image).digest(),
                       version.encode()[:16], b"\0" * 24)
    head += hashlib.sha256(head).digest()
    assert len(head) == L["STAGE_HDR_SIZE"]
    return head


def stage_file(image: bytes, version: str) -> bytes:
    """What the device stages (IOT_STAGE_PATH in its littlefs) and the fleet serves."""
    check_app(image)
    stream = compress(image)
    return stage_header(image, stream, version) + stream


FS_CONFIG = {"block_size": 4096, "prog_size": 256, "read_size": 32, "lookahead_size": 32}
# as the port mounts it (_boot.py: progsize=256); a new filesystem is made in on-disk format 2.0
# (MicroPython's littlefs moves it to 2.1 when it writes the superblock: both mount)
FS_FORMAT_VERSION = 0x00020000


def fs_update(flash: bytearray, files: dict) -> None:
    """Write (bytes) or delete (None) files in the littlefs of a 2 MB flash image, formatting
    it first if there is none: what the application does through its filesystem."""
    from littlefs import LittleFS, LittleFSError, UserContext
    region = slice(L["FS_OFFSET"], L["FS_OFFSET"] + L["FS_SIZE"])
    ctx = UserContext(buffer=bytearray(flash[region]))
    count = L["FS_SIZE"] // L["FLASH_SECTOR"]
    try:
        fs = LittleFS(context=ctx, block_count=count, **FS_CONFIG)
    except LittleFSError:
        fs = LittleFS(context=ctx, block_count=count, mount=False, disk_version=FS_FORMAT_VERSION, **FS_CONFIG)
        fs.format()
        fs.mount()
    for path, data in files.items():
        parent = os.path.dirname(path)
        if parent:
            try:
                fs.makedirs(parent, exist_ok=True)
            except LittleFSError:
                pass
        if data is None:
            try:
                fs.remove(path)
            except LittleFSError:
                pass
        else:
            with fs.open(path, "wb") as fh:
                fh.write(data)
    fs.unmount()
    flash[region] = ctx.buffer


def fs_read(flash: bytes, path: str) -> bytes | None:
    """A file of the flash image's littlefs, or None."""
    from littlefs import LittleFS, LittleFSError, UserContext
    ctx = UserContext(buffer=bytearray(flash[L["FS_OFFSET"]:L["FS_OFFSET"] + L["FS_SIZE"]]))
    try:
        fs = LittleFS(context=ctx, block_count=L["FS_SIZE"] // L["FLASH_SECTOR"], **FS_CONFIG)
        with fs.open(path, "rb") as fh:
            return fh.read()
    except (LittleFSError, OSError):  # no filesystem, or no such file
        return None


BI_MARKER_START, BI_MARKER_END = 0x7188EBF2, 0xE71AA390  # pico-sdk binary_info header words
BOOT2_SIZE = 256


def _bi_header(data: bytes, start: int) -> int | None:
    """Offset of the binary-info header (start marker, table start, table end, mapping table,
    end marker) in the 256 bytes from `start` (where picotool looks for it), or None."""
    for off in range(start, min(start + 256, len(data) - 16), 4):
        words = struct.unpack_from("<5I", data, off)
        if words[0] == BI_MARKER_START and words[4] == BI_MARKER_END:
            return off
    return None


def link_binary_info(loader: bytes, app: bytes) -> bytes:
    """The loader with its binary-info header pointing at the application's table.

    picotool reads binary info only from the header in the 256 bytes after boot2, i.e. the
    loader's. The application's table, strings and mapping table are at absolute XIP
    addresses inside the application region, so copying the application's three pointers
    into the loader's header makes `picotool info` on the factory image (or a device flashed
    with it) show MicroPython's program information and frozen modules. The loader never
    reads its own binary info. After an image OTA the copy is stale (the loader region is
    never rewritten): picotool then reads the new image's region through the old pointers;
    read `picotool info` from the image's own firmware.uf2 or ask the device (_iotlib.build_info())."""
    lo, ao = _bi_header(loader, BOOT2_SIZE), _bi_header(app, 0)
    if lo is None:
        raise ValueError("no binary-info header in the loader's first 256 bytes after boot2")
    if ao is None:  # an application without binary info: picotool shows the loader's
        return loader
    out = bytearray(loader)
    out[lo + 4:lo + 16] = app[ao + 4:ao + 16]
    return bytes(out)


def factory_flash(loader: bytes, app: bytes, staged: bytes | None = None, version: str = "") -> bytearray:
    """A whole 2 MB flash image: loader (binary info linked to the application's), application,
    optionally a staged image in the filesystem; journal erased (and the filesystem, unless
    an image is staged)."""
    if len(loader) > L["LOADER_SIZE"]:
        raise ValueError("loader is %d bytes, its region %d" % (len(loader), L["LOADER_SIZE"]))
    check_app(app)
    loader = link_binary_info(loader, app)
    flash = bytearray(b"\xff" * FLASH_SIZE)
    flash[0:len(loader)] = loader
    flash[L["APP_OFFSET"]:L["APP_OFFSET"] + len(app)] = app
    if staged is not None:
        stage(flash, staged, version)
    return flash


def stage(flash: bytearray, image: bytes | None, version: str = "", data: bytes | None = None) -> bytes:
    """What the application does to request an install: the staged file in its littlefs
    (`data` as given, else made from `image`). Returns the file's bytes."""
    data = stage_file(image, version) if data is None else data
    fs_update(flash, {L["STAGE_PATH"]: data})
    return data


def uf2(regions, family=0xE48BFF56) -> bytes:
    """UF2 (256-byte payloads, family RP2040) for [(flash offset, bytes), ...]."""
    blocks = []
    for offset, data in regions:
        data = bytes(data) + b"\xff" * (-len(data) % 256)
        for i in range(0, len(data), 256):
            blocks.append((XIP_BASE + offset + i, data[i:i + 256]))
    out = bytearray()
    for n, (addr, payload) in enumerate(blocks):
        out += struct.pack("<IIIIIIII", 0x0A324655, 0x9E5D5157, 0x2000, addr, 256, n, len(blocks), family)
        out += payload + b"\0" * (476 - 256) + struct.pack("<I", 0x0AB16F30)
    return bytes(out)


def sign(app: bytes, key_path: str, version: str, min_version: str | None) -> tuple[bytes, dict]:
    """(the staged file, its manifest)."""
    sys.path.insert(0, os.path.join(ROOT, "tools", "iot-sign"))
    from iot_sign.signing import load_private_key, sign_manifest
    data = stage_file(app, version)
    return data, sign_manifest(load_private_key(key_path), "image", version, min_version, data)


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sign", help="sign an application image (kind image)")
    s.add_argument("--key", required=True)
    s.add_argument("--version", required=True)
    s.add_argument("--min-version")
    s.add_argument("--out", required=True, help="image file; the manifest goes to OUT.json")
    s.add_argument("app", help="firmware.bin of an application linked after the loader")
    f = sub.add_parser("factory", help="loader + application as one UF2 (or .bin)")
    f.add_argument("--loader", required=True)
    f.add_argument("--app", required=True)
    f.add_argument("--out", required=True)
    sub.add_parser("layout", help="print the flash layout")
    a = p.parse_args(argv)
    try:
        if a.cmd == "sign":
            data, manifest = sign(_read(a.app), a.key, a.version, a.min_version)
            with open(a.out, "wb") as fh:
                fh.write(data)
            with open(a.out + ".json", "w") as fh:
                json.dump(manifest, fh, indent=1)
            print(json.dumps(manifest))
        elif a.cmd == "factory":
            loader, app = _read(a.loader), _read(a.app)
            factory_flash(loader, app)  # checks sizes and linking
            with open(a.out, "wb") as fh:
                if a.out.endswith(".bin"):
                    fh.write(factory_flash(loader, app)[:L["APP_OFFSET"] + len(app)])
                else:
                    fh.write(uf2([(0, link_binary_info(loader, app)), (L["APP_OFFSET"], app)]))
            print(a.out)
        else:
            print(json.dumps({k: hex(v) if isinstance(v, int) and v > 16 else v for k, v in L.items()}, indent=1))
    except (ValueError, OSError) as exc:
        print("pack_image: error: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
