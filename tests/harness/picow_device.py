"""One emulated Pico W (rp2040py `pico_w` board) behind the loopback-only bridge of
`picow_bridge`, run from synchronous tests.

The emulator runs on rp2040py's own engine-room thread (its Simulator's background loop), so a
test thread can use real clients against the injector meanwhile. `PicoW.start()` enters the
process-wide guard first, then builds the board with the loopback radio, boots the image and
starts the injector; `stop()` undoes all of it. Console output (everything the guest prints,
including raw-REPL runs) is kept in `console` for failure messages.
"""
import concurrent.futures
import threading
import time

from rp2040py.boards import resolve_firmware
from rp2040py.device import MicroPythonDevice

from harness.picow_bridge import LoopbackCyw43439, LoopbackGuard, Refusals, loopback_pico_w

SSID = "RP2040PY-GUEST"  # the emulated AP; it accepts any password


class GuestError(AssertionError):
    """Code run on the guest failed; the message has its output and the console's tail."""


class PicoW:
    def __init__(self, image, guest_port=80):
        self.image = image
        self.refusals = Refusals()
        self.guard = LoopbackGuard(self.refusals)
        self.radio = LoopbackCyw43439(self.refusals, guest_port)
        self.device = None
        self._console = []  # (wall time, text) as it arrived
        self._partial = b""
        self._lock = threading.Lock()
        self.t0 = time.time()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout=120):
        self.guard.__enter__()  # before the emulator exists: nothing can dial out unguarded
        try:
            board = resolve_firmware(loopback_pico_w(self.radio), "micropython", str(self.image))
            self.device = MicroPythonDevice(board=board)
            self.device.start_async(timeout).result(timeout + 10)
            self._listen()
            self.injector_port = self._call(self.radio.bridge.injector.start(), 30)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.device is not None:
            try:
                self._call(self._stop_injector(), 10)
            except Exception:
                pass
            self.device.stop()
            self.device = None
        self.guard.__exit__(None, None, None)

    async def _stop_injector(self):
        self.radio.bridge.injector.stop()

    def _call(self, coro, timeout):
        return self.device.simulator.submit(coro).result(timeout)

    # -- console ------------------------------------------------------------------------------

    def _listen(self):
        self.device.cdc.on_serial_data = self._on_console

    def _on_console(self, data):
        with self._lock:
            self._partial += bytes(data)
            *lines, self._partial = self._partial.split(b"\n")
            now = time.time() - self.t0
            self._console.extend((now, l.decode("utf-8", "replace").rstrip("\r")) for l in lines)

    @property
    def console(self):
        with self._lock:
            return "\n".join(l for _, l in self._console)

    def console_tail(self, lines=60):
        """The last lines, each with the wall-clock second it arrived (since start())."""
        with self._lock:
            return "\n".join("%7.1f %s" % item for item in self._console[-lines:])

    # -- running code -------------------------------------------------------------------------

    def run(self, code, timeout=120):
        """Run `code` over the raw REPL (interrupting whatever runs); its stdout. A traceback
        on the guest is a GuestError with its output."""
        future = self.device.exec_async(code, timeout)
        try:
            out, err = future.result(timeout + 10)
        except (TimeoutError, concurrent.futures.TimeoutError) as e:
            raise GuestError("guest code did not finish within %ss (%s); console:\n%s"
                             % (timeout, e, self.console_tail())) from None
        finally:
            self._listen()  # the raw-REPL run took the console; take it back
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        self._on_console(("[raw REPL]\n%s%s\n" % (out, err)).encode())
        if err.strip():
            raise GuestError("guest code failed:\n%s%s" % (out, err))
        return out

    def soft_reset(self):
        """Leave the raw REPL and soft-reset (Ctrl-B, Ctrl-D, as mpremote does after a copy):
        a fresh heap, and the image runs its boot and main.py again. Not a RUN-pin reset:
        rp2040py 0.3.6's radio does not come back from one ("Failed to start CYW43")."""
        self._on_console(b"[soft reset]\n")

        async def keys():
            for key in (2, 4):
                self.device.cdc.send_serial_byte(key)
        self._listen()
        self._call(keys(), 10)

    # -- hardware -------------------------------------------------------------------------

    def gpio_high(self, pin):
        """Whether the chip drives `pin` high (read on the emulator's thread)."""
        async def read():
            p = self.device.mcu.gpio[pin]
            return bool(p.output_enable and p.output_value)
        return self._call(read(), 10)
