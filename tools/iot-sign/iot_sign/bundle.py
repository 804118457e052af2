"""The bundle archive format (version 1), read by modules/iotlib/ota/bundle.py.

    header  b"IOTB" | u8 format=1 | u8 flags | u16 file count        (little endian)
    body    (zlib-compressed with a 1 KiB window when flags & 1, else stored)
            per file: u16 name length | name (UTF-8, "/" separated) | u32 size | bytes

Names are relative paths below the slot folder: no leading "/", no "." or ".."
parts, no empty parts. A 1 KiB deflate window keeps the device's decompressor small.
"""
import struct
import zlib

MAGIC = b"IOTB"
FORMAT = 1
FLAG_ZLIB = 1
WBITS = 10
MAX_NAME = 120


class BundleError(ValueError):
    pass


def check_name(name: str) -> str:
    parts = name.split("/")
    if (not name or len(name.encode()) > MAX_NAME or name.startswith("/")
            or any(p in ("", ".", "..") for p in parts)):
        raise BundleError(f"bad file name in bundle: {name!r}")
    return name


def pack_bundle(files: dict, compress: bool = True) -> bytes:
    """files: {relative name: bytes}; returns the archive bytes."""
    body = bytearray()
    for name in sorted(files):
        data = files[name]
        raw = check_name(name).encode()
        body += struct.pack("<H", len(raw)) + raw + struct.pack("<I", len(data)) + data
    flags = 0
    if compress:
        co = zlib.compressobj(9, zlib.DEFLATED, WBITS)
        body = co.compress(bytes(body)) + co.flush()
        flags |= FLAG_ZLIB
    return MAGIC + struct.pack("<BBH", FORMAT, flags, len(files)) + bytes(body)


def unpack_bundle(blob: bytes) -> dict:
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise BundleError("not a bundle (bad magic)")
    fmt, flags, count = struct.unpack_from("<BBH", blob, 4)
    if fmt != FORMAT:
        raise BundleError(f"unknown bundle format {fmt}")
    body = blob[8:]
    if flags & FLAG_ZLIB:
        body = zlib.decompress(body, WBITS)
    files, pos = {}, 0
    for _ in range(count):
        (n,) = struct.unpack_from("<H", body, pos)
        name = check_name(body[pos + 2:pos + 2 + n].decode())
        pos += 2 + n
        (size,) = struct.unpack_from("<I", body, pos)
        pos += 4
        if pos + size > len(body):
            raise BundleError("truncated bundle")
        files[name] = body[pos:pos + size]
        pos += size
    if pos != len(body):
        raise BundleError("trailing bytes in bundle")
    return files
