# The one resumable download, for bundles and images alike: Range requests of `chunk` bytes
# into <work>/download.part, hashed as they stream. <work>/download.json names the artefact
# (its sha256), so a download cut off by a lost link resumes at the next attempt from the
# bytes already there (re-hashed first), and one for another artefact starts afresh. Bytes
# that hash wrong are deleted, never resumed from.
import asyncio
import binascii
import hashlib
import json
import os

from iotlib.ota.policy import Refused
from iotlib.storage import makedirs

PART, META = "/download.part", "/download.json"


def remove(work):
    for name in (PART, META):
        try:
            os.remove(work + name)
        except OSError:
            pass


def part_size(work, sha256):
    """Bytes of this artefact already downloaded (0: none, or another artefact's)."""
    try:
        with open(work + META) as f:
            if json.load(f).get("sha256") != sha256:
                return 0
        return os.stat(work + PART)[6]
    except (OSError, ValueError):
        return 0


async def fetch(http, url, m, work, chunk, progress, first=None):
    """Download artefact m (size, sha256, version) from url into work; returns the part
    file's path. progress(done, total, resumed_from) follows every chunk; first(body), if
    given, sees the first chunk of a fresh download before it is kept (it raises Refused).
    OSError (link lost) leaves the part file to resume from; Refused for a bad answer."""
    part, size = work + PART, m["size"]
    makedirs(work)
    h = hashlib.sha256()
    offset = 0
    if part_size(work, m["sha256"]):  # resume: re-hash what is already there
        try:
            with open(part, "rb") as f:
                buf = bytearray(512)
                while True:
                    n = f.readinto(buf)
                    if not n:
                        break
                    h.update(memoryview(buf)[:n])
                    offset += n
                    if not offset % 16384:  # an image's part is 600 KB: let the WDT feeder run
                        await asyncio.sleep_ms(0)
        except OSError:
            offset = 0
    if not 0 < offset <= size:  # nothing (of this artefact) to resume from: start afresh
        offset, h = 0, hashlib.sha256()
        remove(work)
        with open(work + META, "w") as f:
            json.dump({"sha256": m["sha256"], "version": m["version"]}, f)
        open(part, "wb").close()
    progress(offset, size, offset)
    resumed = offset
    with open(part, "ab") as out:
        while offset < size:
            end = min(offset + chunk, size) - 1
            r = await http.request("GET", url, headers={"Range": "bytes=%d-%d" % (offset, end)})
            if r.status == 200 and offset == 0 and len(r.body) == size:
                pass  # a server without Range support, and the whole thing fits a chunk
            elif r.status != 206:
                raise Refused("download", "HTTP %d at byte %d" % (r.status, offset))
            if not r.body or offset + len(r.body) > size:
                raise Refused("oversized", "artefact is not %d bytes" % size)
            if offset == 0 and first is not None:
                try:
                    first(r.body)
                except Refused:
                    out.close()
                    remove(work)
                    raise
            h.update(r.body)
            out.write(r.body)
            out.flush()
            offset += len(r.body)
            progress(offset, size, resumed)
    if binascii.hexlify(h.digest()).decode() != m["sha256"]:
        remove(work)  # never resume from bytes that hash wrong
        raise Refused("bad_hash", "downloaded bytes do not match the signed sha256")
    return part
