"""`firmware/sim.py` (what `make sim` runs) started the way a user starts it, on a free block
of loopback ports; the tests read what it prints, as a user would."""
import os
import re
import subprocess
import sys
import time

from fleet_devtools.ports import free_port_block
from harness.run import BUILD, ROOT

READY_LINE = "Ctrl-C stops everything"


def start_sim(work, seconds):
    """Start the launcher in `work` for `seconds`; wait for its ready line (60 s).
    Returns (process, base port, everything printed so far, the admin token it printed)."""
    base = free_port_block()
    env = dict(os.environ, IOTLIB_BUILD=str(BUILD),
               PATH="%s:%s" % (os.path.dirname(sys.executable), os.environ["PATH"]))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "firmware" / "sim.py"), "--base-port", str(base),
         "--dir", str(work), "--for-seconds", str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    printed = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        printed.append(line)
        if READY_LINE in line:
            break
    text = "".join(printed)
    if READY_LINE not in text:
        proc.kill()
        raise AssertionError("sim.py never printed %r:\n%s" % (READY_LINE, text))
    return proc, base, text, re.search(r"export TOKEN=(\S+)", text).group(1)
