# Application bundles in the filesystem: two slot folders (root/a, root/b) and one state
# record. A verified bundle is unpacked into the slot that is not running, becomes
# *pending*, and runs on trial from the next boot: ahead of the frozen modules on sys.path.
# It must be committed within max_boots boots (counted here, in state.json "boots": the one
# counter of a bundle's trial; and, enforced by OTAUpdateManager, within a deadline); otherwise the store falls back to the previous bundle, and with none left to
# the frozen factory code. Every state change is one atomic rename of root/state.json.
#
# Bundle format v1 (written by tools/iot-sign, iot_sign/bundle.py):
#   "IOTB" | u8 format=1 | u8 flags (1 = zlib body, 1 KiB window) | u16 file count
#   per file: u16 name length | name | u32 size | bytes
import json
import os
import struct
import sys

from iotlib.storage import makedirs

MAGIC = b"IOTB"
FLAG_ZLIB = 1
INDEX = ".bundle.json"
SLOTS = ("a", "b")
_DIR = 0x4000


class BundleError(ValueError):
    pass


def _rmtree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for entry in entries:
        child = path + "/" + entry[0]
        if entry[1] == _DIR:
            _rmtree(child)
        else:
            os.remove(child)
    os.rmdir(path)


def _readn(src, n):
    """Exactly n bytes from a stream (DeflateIO may return short reads)."""
    buf = b""
    while len(buf) < n:
        chunk = src.read(n - len(buf))
        if not chunk:
            raise BundleError("truncated bundle")
        buf += chunk
    return buf


def check_name(name):
    parts = name.split("/")
    if not name or len(name) > 120 or name[0] == "/" or "\\" in name:
        raise BundleError("bad file name in bundle: %r" % name)
    for p in parts:
        if p in ("", ".", ".."):
            raise BundleError("bad file name in bundle: %r" % name)
    return name


def _top_name(name):
    top = name.split("/")[0]
    for ext in (".mpy", ".py"):
        if top.endswith(ext):
            return top[:-len(ext)]
    return top


class BundleStore:
    def __init__(self, root="/ota", max_boots=3, max_unpacked=512 * 1024, max_files=64):
        self.root = root.rstrip("/") or "/"
        self.max_boots = max_boots
        self.max_unpacked = max_unpacked
        self.max_files = max_files
        self._booted = None  # what boot() chose for this run

    # ---- state record -------------------------------------------------------------------

    def state(self):
        """The persistent record; a missing or corrupt one means factory code only."""
        try:
            with open(self.root + "/state.json") as f:
                st = json.load(f)
            if isinstance(st, dict):
                return st
        except (OSError, ValueError):
            pass
        return {}

    def _save(self, st):
        makedirs(self.root)
        tmp = self.root + "/state.tmp"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.rename(tmp, self.root + "/state.json")  # atomic on littlefs and POSIX

    def slot_path(self, slot):
        return self.root + "/" + slot

    def _index(self, slot):
        try:
            with open(self.slot_path(slot) + "/" + INDEX) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    # ---- boot ---------------------------------------------------------------------------

    def boot(self):
        """Call once at start-up, before importing application code. Chooses the bundle to
        run (counting a trial boot, rolling back an expired trial), puts it first on
        sys.path and returns boot_state()."""
        st = self.state()
        rolled = None
        if st.get("pending"):
            st["boots"] = st.get("boots", 0) + 1
            if st["boots"] > self.max_boots:
                rolled = "boot count: %d boots without commit" % (st["boots"] - 1)
                self._drop_pending(st, rolled)
            elif self._index(st["pending"]) is None:
                rolled = "pending slot unreadable"
                self._drop_pending(st, rolled)
            self._save(st)
        slot = st.get("pending") or st.get("active")
        if slot and not st.get("pending") and self._index(slot) is None:
            # the active bundle is damaged: the previous one, else the factory code
            rolled = "active slot unreadable"
            self._rollback_committed(st, rolled)
            self._save(st)
            slot = st.get("active")
        index = self._index(slot) if slot else None
        if index is not None:
            path = self.slot_path(slot)
            if path not in sys.path:
                sys.path.insert(0, path)
            # modules a bundle replaces may already be loaded from the frozen image
            tops = set(_top_name(n) for n in index.get("files", ()))
            for mod in list(sys.modules):
                if mod.split(".")[0] in tops:
                    del sys.modules[mod]
        self._booted = {"slot": slot if index else None,
                        "version": index.get("version") if index else None,
                        "trial": bool(index and st.get("pending") == slot),
                        "rolled_back": rolled}
        return self.boot_state()

    def boot_state(self):
        st = self.state()
        b = self._booted or {"slot": None, "version": None, "trial": False, "rolled_back": None}
        return {"slot": b["slot"], "version": b["version"], "trial": b["trial"],
                "rolled_back": b["rolled_back"], "boots": st.get("boots", 0),
                "max_boots": self.max_boots, "active": st.get("active"),
                "active_version": st.get("active_version"), "pending": st.get("pending"),
                "pending_version": st.get("pending_version"),
                "previous_version": st.get("previous_version"),
                "last_event": st.get("last_event")}

    def running_version(self):
        """Version of the bundle this boot runs, or None for the factory code."""
        return (self._booted or {}).get("version")

    # ---- install / commit / rollback ----------------------------------------------------

    def inactive_slot(self):
        st = self.state()
        busy = st.get("pending") or st.get("active")
        if self._booted and self._booted["slot"]:
            busy = self._booted["slot"]  # never overwrite the code that is running now
        return "b" if busy == "a" else "a"

    def install(self, path, version):
        """Unpack the (already verified) bundle file into the inactive slot; mark it pending."""
        slot = self.inactive_slot()
        dest = self.slot_path(slot)
        st = self.state()
        if st.get("previous") == slot:  # the previous bundle is about to be overwritten
            st.pop("previous", None)
            st.pop("previous_version", None)
            self._save(st)
        _rmtree(dest)
        makedirs(dest)
        try:
            files = self._unpack(path, dest)
        except Exception:
            _rmtree(dest)
            raise
        # the index is written last: a slot without one is never booted
        with open(dest + "/" + INDEX, "w") as f:
            json.dump({"version": version, "files": files}, f)
        st = self.state()
        st.update({"pending": slot, "pending_version": version, "boots": 0,
                   "last_event": "installed %s into slot %s" % (version, slot)})
        self._save(st)
        return slot

    def _unpack(self, path, dest):
        with open(path, "rb") as raw:
            head = raw.read(8)
            if len(head) != 8 or head[:4] != MAGIC:
                raise BundleError("not a bundle (bad magic)")
            fmt, flags, count = struct.unpack("<BBH", head[4:])
            if fmt != 1:
                raise BundleError("unknown bundle format %d" % fmt)
            if count > self.max_files:
                raise BundleError("too many files (%d)" % count)
            src = raw
            if flags & FLAG_ZLIB:
                import deflate
                src = deflate.DeflateIO(raw, deflate.ZLIB)
            names, total, buf = [], 0, bytearray(512)
            for _ in range(count):
                (n,) = struct.unpack("<H", _readn(src, 2))
                name = check_name(_readn(src, n).decode())
                (size,) = struct.unpack("<I", _readn(src, 4))
                total += size
                if total > self.max_unpacked:
                    raise BundleError("bundle unpacks to more than %d bytes" % self.max_unpacked)
                target = dest + "/" + name
                if "/" in name:
                    makedirs(target.rsplit("/", 1)[0])
                with open(target, "wb") as out:
                    left = size
                    mv = memoryview(buf)
                    while left:
                        got = src.readinto(mv[:min(left, len(buf))])
                        if not got:
                            raise BundleError("truncated bundle")
                        out.write(mv[:got])
                        left -= got
                names.append(name)
            if src.read(1):
                raise BundleError("trailing bytes in bundle")
        return names

    def commit(self):
        """Make the pending bundle permanent; the one it replaces becomes `previous`."""
        st = self.state()
        if not st.get("pending"):
            return False
        if st.get("active"):
            st["previous"], st["previous_version"] = st["active"], st.get("active_version")
        st["active"], st["active_version"] = st.pop("pending"), st.pop("pending_version", None)
        st["boots"] = 0
        st["last_event"] = "committed %s" % st["active_version"]
        self._save(st)
        if self._booted and self._booted["slot"] == st["active"]:
            self._booted["trial"] = False
        return True

    def rollback(self, reason="requested"):
        """Drop a pending bundle, or step back from the committed one to the previous bundle
        (or the factory code). Takes effect at the next boot. Returns the version to run."""
        st = self.state()
        if st.get("pending"):
            self._drop_pending(st, reason)
        else:
            self._rollback_committed(st, reason)
        self._save(st)
        return st.get("active_version")

    def _drop_pending(self, st, reason):
        st["last_event"] = "rolled back %s: %s" % (st.get("pending_version"), reason)
        st["failed_version"] = st.pop("pending_version", None)
        st.pop("pending", None)
        st["boots"] = 0
        if self._booted:
            self._booted["trial"] = False  # the running trial bundle is no longer wanted

    def _rollback_committed(self, st, reason):
        st["last_event"] = "rolled back %s: %s" % (st.get("active_version") or "factory", reason)
        st["failed_version"] = st.get("active_version")
        if st.get("previous") and self._index(st["previous"]) is not None:
            st["active"], st["active_version"] = st.pop("previous"), st.pop("previous_version", None)
        else:
            for k in ("active", "active_version", "previous", "previous_version"):
                st.pop(k, None)
