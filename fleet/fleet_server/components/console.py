"""The web console under /console: log in with a tenant's API token, then fleet, device, alarm, rollout pages.

The session is the token itself in an HttpOnly, SameSite=Strict cookie; every request verifies it, so
nothing is served without a valid token of the tenant. Forms post back here and go through the same
admin operations (and audit) as the HTTP API.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from urllib.parse import parse_qs, quote

import httpx
import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .. import admin_ops
from ..api_error import ApiError
from ..auth import Principal, verify_bearer
from ..context import AppContext, api_scope, get_ctx
from ..console import pages
from ..inventory import inventory_item, inventory_page
from .readiness import storage_reachable

COOKIE = "fleet_console"
SCRIPT = (Path(__file__).resolve().parents[1] / "console" / "console.js").read_text()


class LoginNeeded(Exception):
    pass


def _session(request: Request, ctx: AppContext) -> Principal:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginNeeded()
    try:
        who = verify_bearer(token, ctx.server_secret, ctx.storage.get_tenant)
    except ApiError:
        raise LoginNeeded()
    if who.kind != "api" or "devices:read" not in who.permissions:
        raise LoginNeeded()
    return who


async def _form(request: Request) -> dict[str, str]:
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _back(request: Request, fallback: str) -> RedirectResponse:
    ref = request.headers.get("referer", "")
    target = ref[ref.index("/console/"):] if "/console/" in ref else fallback
    return RedirectResponse(target, status_code=303)


def make_router() -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)

    def guarded(fn):
        """Run a page handler with the session; no session -> the login page (HTML) or 401 (JSON)."""
        async def wrapper(request: Request, ctx: AppContext, **kw):
            try:
                who = _session(request, ctx)
            except LoginNeeded:
                if request.url.path.endswith(".json"):
                    return JSONResponse({"error": "unauthorized", "detail": "log in first"}, status_code=401)
                return RedirectResponse("/console/login", status_code=303)
            try:
                return await fn(request, ctx, who, **kw)
            except ApiError as exc:
                if request.url.path.endswith(".json"):
                    return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)
                return HTMLResponse(pages.error_page(who.sub, exc.status, exc.detail), status_code=exc.status)
        wrapper.__name__ = fn.__name__
        # what FastAPI sees: the request, the handler's own path parameters, and the context dependency
        extra = [p for name, p in inspect.signature(fn).parameters.items() if name not in ("request", "ctx", "who")]
        wrapper.__signature__ = inspect.Signature([
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
            *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in extra],
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, default=Depends(get_ctx), annotation=AppContext)])
        return wrapper

    @router.get("/login")
    async def login_form():
        return HTMLResponse(pages.login_page())

    @router.post("/login")
    async def login(request: Request, ctx: AppContext = Depends(get_ctx)):
        token = (await _form(request)).get("token", "").strip()
        try:
            who = verify_bearer(token, ctx.server_secret, ctx.storage.get_tenant) if token else None
        except ApiError as exc:
            return HTMLResponse(pages.login_page(exc.detail), status_code=401)
        if who is None or who.kind != "api" or "devices:read" not in who.permissions:
            return HTMLResponse(pages.login_page("an API token with devices:read is required"), status_code=401)
        exp = int(jwt.decode(token, options={"verify_signature": False})["exp"])
        res = RedirectResponse("/console/", status_code=303)
        res.set_cookie(COOKIE, token, max_age=max(1, exp - int(time.time())), httponly=True, samesite="strict",
                       path="/console")
        return res

    @router.post("/logout")
    async def logout():
        res = RedirectResponse("/console/login", status_code=303)
        res.delete_cookie(COOKIE, path="/console")
        return res

    @router.get("/static/console.js")
    async def script():
        return Response(SCRIPT, media_type="text/javascript")

    @router.get("/")
    @guarded
    async def overview(request, ctx, who):
        inv = inventory_page(ctx.storage, who.tenant, who.namespace, ctx.settings.offline_after_s, limit=500)
        alarms = ctx.storage.list_alarm_records(who.tenant, statuses=["open", "acknowledged"]) \
            if "alarms:read" in who.permissions else []
        return HTMLResponse(pages.overview_page(who.sub, inv, alarms))

    @router.get("/devices/{device_id}")
    @guarded
    async def device(request, ctx, who, device_id: str):
        d = admin_ops.scoped_device(ctx.storage, api_scope(who, "devices:read"), device_id)
        item = inventory_item(ctx.storage, d, ctx.settings.offline_after_s)
        alarms = ctx.storage.list_alarm_records(who.tenant, device_id) if "alarms:read" in who.permissions else []
        relays = list((ctx.storage.get_config(device_id)[1].get("relays") or {}))
        return HTMLResponse(pages.device_page(who.sub, item, alarms, "state:write" in who.permissions, relays))

    @router.post("/devices/{device_id}/relays/{relay}")
    @guarded
    async def switch_relay(request, ctx, who, device_id: str, relay: str):
        state = (await _form(request)).get("state")
        if state not in ("HIGH", "LOW"):
            raise ApiError(400, "state: must be HIGH or LOW")
        admin_ops.merge_desired(ctx.storage, api_scope(who, "state:write"), device_id, "relays", relay, state)
        return RedirectResponse(f"/console/devices/{quote(device_id)}", status_code=303)

    @router.get("/devices/{device_id}/sensors.json")
    @guarded
    async def sensors(request, ctx, who, device_id: str):
        """The device's latest readings, fetched from the device with the operator's own token."""
        api_scope(who, "sensors:read")
        d = admin_ops.scoped_device(ctx.storage, api_scope(who, "devices:read"), device_id)
        reg = d.get("registration") or {}
        if not reg.get("address"):
            raise ApiError(404, "the device has not registered an address")
        url = f"http://{reg['address']}:{reg['port']}/sensors"
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                res = await client.get(url, headers={"Authorization": f"Bearer {request.cookies[COOKIE]}"})
        except httpx.HTTPError as exc:
            raise ApiError(503, f"device not reachable: {type(exc).__name__}")
        if res.status_code != 200:
            raise ApiError(502, f"device answered {res.status_code}")
        return JSONResponse(res.json())

    @router.get("/alarms")
    @guarded
    async def alarms(request, ctx, who):
        scope = api_scope(who, "alarms:read")
        return HTMLResponse(pages.alarms_page(who.sub, ctx.storage.list_alarm_records(scope.tenant)))

    @router.post("/alarms/{action}")
    @guarded
    async def alarm_action(request, ctx, who, action: str):
        form = await _form(request)
        scope = api_scope(who, "alarms:write")
        admin_ops.scoped_device(ctx.storage, scope, form.get("device_id", ""))
        if action == "acknowledge":
            ctx.alarms.acknowledge(form["device_id"], form.get("type", ""), form.get("source", ""), who.sub)
        elif action == "clear":
            ctx.alarms.clear(form["device_id"], form.get("type", ""), form.get("source", ""), who.sub)
        else:
            raise ApiError(404, f"unknown alarm action {action!r}")
        return _back(request, "/console/alarms")

    @router.get("/rollouts")
    @guarded
    async def rollouts(request, ctx, who):
        scope = api_scope(who, "devices:read")
        return HTMLResponse(pages.rollouts_page(who.sub, ctx.storage.list_rollouts(scope.tenant)))

    return router


ready = storage_reachable
