"""The RELAYS image in the emulated RP2040 (rp2040py, no network): the same Python API
switches the real GPIO outputs, and a full HTTP request (JWT, RBAC, relay write) runs
through the Microdot app over in-memory streams. Also the free heap once it all runs."""
import re

import pytest

from harness.run import run_rp2
from harness.scripts import device_script, shared_script

pytestmark = pytest.mark.rp2

_SETUP = "\n" + device_script(__file__, "relays_setup_rp2.py")


def test_relays_image_switches_pins_through_the_python_api():
    out = run_rp2("RELAYS", _SETUP + "\n" + device_script(__file__, "relays_switch_pins_rp2.py"))
    assert "boot (0, 0) oe 3" in out
    assert "relay1 (1, 0)" in out
    assert "refused interlock: relay1 and relay2 cannot both be on" in out
    assert "after (1, 0)" in out
    assert "swapped (0, 1)" in out
    assert "vetoed relays.x.pin: GPIO 24 is not allowed on this board" in out
    assert "kept ['relay1', 'relay2']" in out


def test_relays_image_serves_http_in_process_and_reports_free_heap():
    out = run_rp2("RELAYS", _SETUP + "\n" + shared_script("memory_streams.py")
                  + device_script(__file__, "relays_http_in_process_rp2.py"))
    assert "post (b'HTTP/1.1 200 OK', b'{\"relay\": \"relay2\", \"state\": \"HIGH\"}') (0, 1)" in out
    assert "\"relay1\": \"LOW\"" in out and "\"relay2\": \"HIGH\"" in out
    assert "conflict b'HTTP/1.1 409 Conflict'" in out
    assert "paths b'HTTP/1.1 404 Not Found' b'HTTP/1.1 414 URI Too Long'" in out
    started = int(re.search(r"free_started (\d+)", out).group(1))
    after = int(re.search(r"free_after_100 (\d+)", out).group(1))
    print("RELAYS image in rp2040py: free heap %d bytes after start, %d after 100 more "
          "requests" % (started, after))
    assert started >= 120 * 1024, started
    assert after >= started - 2048, (started, after)  # no growth per request
