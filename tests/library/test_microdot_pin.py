"""Microdot is pinned: iotlib/http_server.py is the one module that imports it and uses its
internals, written against the version it declares (MICRODOT_VERSION). These tests fail on
an upgrade until that module has been checked against the new version: the frozen version
must be the declared one, every internal it relies on must still exist with the shape it
uses (on the unix build, with the frozen Microdot), and no other device module may import
Microdot or reach into a request's socket."""
import re

import pytest

from harness.run import ROOT, run_unix
from harness.scripts import device_script

pytestmark = pytest.mark.unix

MODULES = ROOT / "modules"
OWNER = MODULES / "iotlib" / "http_server.py"


def _declared():
    m = re.search(r'^MICRODOT_VERSION = "([^"]+)"', OWNER.read_text(), re.M)
    assert m, "http_server.py must declare MICRODOT_VERSION"
    return m.group(1)


def test_frozen_microdot_is_the_version_http_server_was_written_against():
    out = run_unix("""
import microdot
from iotlib import http_server
print(microdot.__version__, http_server.MICRODOT_VERSION)
""").split()
    assert out[0] == out[1] == _declared(), out
    # and the build vendors that version (firmware/versions.env pins what is downloaded)
    pinned = re.search(r"^MICRODOT_VERSION=(\S+)$",
                       (ROOT / "firmware" / "versions.env").read_text(), re.M).group(1)
    assert pinned == _declared()


def test_the_microdot_internals_http_server_uses_keep_their_shape():
    out = run_unix("\n" + device_script(__file__, "microdot_internals_shape.py")).splitlines()
    assert out == [
        "nocase text/plain True",
        "request POST /p 1 1.2.3.4 1.1 d b'x' True",
        "dispatch [True] x True",
        "response 201 b 2 b'x1' False True",
        "already_handled True",
        "missing 404",
        "sndbuf True (1, 7, 2048)",
        "take True True",
    ], out


def test_send_buffer_is_best_effort_without_a_socket_option():
    out = run_unix("""
from microdot import Microdot, Request
from microdot.microdot import NoCaseDict
from iotlib.http_server import send_buffer

class Writer:
    s = object()  # a port whose sockets have no setsockopt

req = Request(Microdot(), "1.2.3.4", "GET", "/", "1.1", NoCaseDict(), sock=("r", Writer()))
print(send_buffer(req, 2048))
""").strip()
    assert out == "False"


_IMPORT = re.compile(r"^\s*(from\s+microdot\b|import\s+microdot\b)", re.M)
_SOCKET = re.compile(r"\.sock\b|\.already_handled\b|\._process_websocket_frame\b")


def test_no_other_device_module_imports_microdot_or_reaches_into_the_socket():
    importers = set()
    reaching = set()
    for path in MODULES.rglob("*.py"):
        text = path.read_text()
        name = str(path.relative_to(MODULES))
        if _IMPORT.search(text):
            importers.add(name)
        if _SOCKET.search(text):
            reaching.add(name)
    owner = str(OWNER.relative_to(MODULES))
    # the owner is found (the patterns work), and it is the only one
    assert importers == {owner}, importers
    assert reaching == {owner}, reaching


def test_the_module_check_sees_the_spellings_an_offender_would_use():
    for line in ("from microdot import Response", "import microdot",
                 "    from microdot.microdot import NoCaseDict"):
        assert _IMPORT.search(line), line
    assert not _IMPORT.search("# built on Microdot")
    assert not _IMPORT.search("from microdot_helpers import x")
    assert _SOCKET.search("request.sock[1].s.setsockopt(1, 7, n)")
    assert _SOCKET.search("reader, writer = request.sock")
    assert not _SOCKET.search("s = socket.socket()")
