"""Run a script in the qemu MPS2_AN385 image over MicroPython's raw REPL.

qemu's 1.25 configuration has no time, select or asyncio, so the image runs pure logic
and the C module over its simulated backend. Raw REPL: Ctrl-A enters it, the script
ends with Ctrl-D, and the board answers OK, stdout, Ctrl-D, the exception text, Ctrl-D.
"""
import os
import pathlib
import select
import subprocess
import time

QEMU_CMD = ["qemu-system-arm", "-machine", "mps2-an385", "-nographic", "-monitor", "null",
            "-semihosting", "-serial", "stdio", "-kernel"]


class QemuError(AssertionError):
    """The script raised inside the qemu image; the message carries its traceback."""


def _read_until(proc, marker, deadline, seen=b""):
    fd = proc.stdout.fileno()
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("qemu: no %r in %r" % (marker, seen[-300:]))
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError("qemu exited; output so far %r" % seen[-300:])
            seen += chunk
    return seen


def run_qemu(elf, code, timeout=30):
    """Run `code` on a fresh qemu boot; return its stdout (str), raise QemuError on error."""
    proc = subprocess.Popen(QEMU_CMD + [str(pathlib.Path(elf))], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        _read_until(proc, b">>> ", deadline)
        proc.stdin.write(b"\r\x01")
        proc.stdin.flush()
        _read_until(proc, b"raw REPL; CTRL-B to exit\r\n>", deadline)
        proc.stdin.write(code.encode() + b"\x04")
        proc.stdin.flush()
        reply = _read_until(proc, b"\x04>", deadline)
    finally:
        proc.kill()
        proc.wait()
    if not reply.startswith(b"OK"):
        raise QemuError("raw REPL refused the script: %r" % reply[:200])
    out, err = reply[2:].split(b"\x04")[:2]
    if err:
        raise QemuError(err.decode(errors="replace") + "\n--- stdout\n" + out.decode())
    return out.decode().replace("\r\n", "\n")
