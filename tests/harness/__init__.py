"""What the tests share and that is not a test: running our images (unix, rp2040py, QEMU),
a device process, the Pico W emulator bridge. Fixtures built on these live in conftest.py."""
