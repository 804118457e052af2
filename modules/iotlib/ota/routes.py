# The device API's OTA routes: GET /ota/state, POST /ota/commit|rollback|check (permission
# ota:admin). One handler serves all four: the action is the path's last part, handed to
# OTAUpdateManager.admin() (one function object on the heap, not four).
import json

ROUTES = (("/ota/state", "GET"), ("/ota/commit", "POST"), ("/ota/rollback", "POST"),
          ("/ota/check", "POST"))


def add_ota_routes(server, ota):
    async def ota_admin(request):
        body = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = None
        status, doc = await ota.admin(request.path[5:], body)  # "/ota/<action>"
        return doc, status

    for path, method in ROUTES:
        server.route(path, (method,), "ota:admin")(ota_admin)
