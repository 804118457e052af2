# Run by tests/library/test_microdot_pin.py.
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
