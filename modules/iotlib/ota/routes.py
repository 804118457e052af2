# The device API's OTA routes: each hands its action to OTAUpdateManager.admin().
import json


def add_ota_routes(server, ota):
    """GET /ota/state, POST /ota/commit|rollback|check (permission ota:admin)."""
    async def run(action, request):
        body = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = None
        status, doc = await ota.admin(action, body)
        return doc, status

    @server.route("/ota/state", ("GET",), "ota:admin")
    async def ota_state(request):
        return await run("state", request)

    @server.route("/ota/commit", ("POST",), "ota:admin")
    async def ota_commit(request):
        return await run("commit", request)

    @server.route("/ota/rollback", ("POST",), "ota:admin")
    async def ota_rollback(request):
        return await run("rollback", request)

    @server.route("/ota/check", ("POST",), "ota:admin")
    async def ota_check(request):
        return await run("check", request)
