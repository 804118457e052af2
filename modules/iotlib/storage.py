# Small files on flash: atomic JSON writes (write a temp file, then rename) so a power cut
# leaves either the old or the new file, never half of one.
import json
import os

from iotlib.hal import load as _hal

# sync(f): make what was written to an open file durable, as closing it would (littlefs keeps
# it in its cache until then; the unix port writes through). The hardware's own, iotlib.hal.
sync = _hal().sync


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def makedirs(path):
    built = ""
    for part in path.split("/"):
        if not part:
            built = "/" if not built else built
            continue
        built = built + part if built.endswith("/") or not built else built + "/" + part
        if not exists(built):
            os.mkdir(built)


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


class Storage:
    def __init__(self, root="."):
        self.root = root.rstrip("/") or "/"

    def path(self, name):
        return name if name.startswith("/") else self.root + "/" + name

    def read_json(self, name, default=None):
        try:
            with open(self.path(name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return default

    def write_json(self, name, value):
        path = self.path(name)
        parent = path.rsplit("/", 1)[0]
        if parent and parent != path:
            makedirs(parent)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(value, f)
        os.rename(tmp, path)

    def remove(self, name):
        remove(self.path(name))
