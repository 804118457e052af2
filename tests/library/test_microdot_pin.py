"""Microdot is pinned: iotlib/http_server.py is the one module that imports it and uses its
internals, written against the version it declares (MICRODOT_VERSION). These tests fail on
an upgrade until that module has been checked against the new version: the frozen version
must be the declared one, every internal it relies on must still exist with the shape it
uses (on the unix build, with the frozen Microdot), and no other device module may import
Microdot or reach into a request's socket."""
import re

import pytest

from harness.run import ROOT, run_unix

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
    out = run_unix("""
import asyncio
from microdot import Microdot, Request, Response
from microdot.microdot import NoCaseDict
from iotlib.http_server import send_buffer, take_stream

# NoCaseDict: headers are looked up whatever their case
h = NoCaseDict()
h["Content-Type"] = "text/plain"
print("nocase", h.get("content-type"), "CONTENT-TYPE" in h)

# Request(app, client_addr, method, url, http_version, headers, body=, sock=), as
# HttpServer._read_request builds it, and the fields the device code reads
app = Microdot()
seen = []

@app.before_request
def hook(request):  # api_server's guard reads request.route here, and sets request.g
    seen.append(request.route is handler)
    request.g.claims = {"sub": "x"}

@app.route("/p", methods=["POST"])
async def handler(request):
    return Response(request.body + request.args["a"].encode(), 201, {"X-A": "b"})

class Sock:
    opts = None
    def setsockopt(self, level, opt, value): Sock.opts = (level, opt, value)

class Writer:
    s = Sock()

streams = ("reader", Writer())
req = Request(app, ("1.2.3.4", 5), "POST", "/p?a=1", "1.1", NoCaseDict({"Host": "d"}),
              body=b"x", sock=streams)
print("request", req.method, req.path, req.args.get("a"), req.client_addr[0], req.http_version,
      req.headers.get("host"), req.body, req.sock is streams)

# dispatch_request(req) -> a Response (coroutine), route set before the hooks run
res = asyncio.run(app.dispatch_request(req))
print("dispatch", seen, req.g.claims["sub"], isinstance(res, Response))

# the Response fields HttpServer._compose and _write_streamed read
res.complete()
print("response", res.status_code, res.headers.get("x-a"), res.headers.get("content-length"),
      res.body, res.is_head, hasattr(res, "body_iter"))
print("already_handled", isinstance(Response.already_handled, Response))

# an unknown route: a 404 Response, not an exception
res = asyncio.run(app.dispatch_request(Request(app, "1.2.3.4", "GET", "/nope", "1.1",
                                               NoCaseDict(), body=b"", sock=streams)))
print("missing", res.status_code)

# the connection helpers reach the socket through request.sock = (reader, writer.s)
print("sndbuf", send_buffer(req, 2048), Sock.opts)
print("take", take_stream(req) is streams, req.upgraded)
""").splitlines()
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
