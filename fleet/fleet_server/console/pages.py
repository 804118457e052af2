"""The console's pages, rendered from the inventory, alarm and rollout records."""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote

from .html import ago, page, post_button, table, text


def login_page(error: str | None = None) -> str:
    note = f'<p class="critical" id="login-error">{text(error)}</p>' if error else ""
    body = (f'<section><h1>Log in</h1>{note}<form method="post" action="/console/login">'
            '<p><label for="token">API token of your tenant (from <code>fleet-admin token</code> '
            'or <code>POST /api/admin/tokens</code>)</label></p>'
            '<p><textarea id="token" name="token" rows="4" cols="80" required></textarea></p>'
            '<p><button type="submit" id="login">Log in</button></p></form></section>')
    return page("Log in", body)


def error_page(user: str, status: int, detail: str) -> str:
    return page("Error", f'<section><h1>{status}</h1><p id="error">{text(detail)}</p>'
                         '<p><a href="/console/">back to the fleet</a></p></section>', user)


def _online(item: dict) -> str:
    return '<span class="online">online</span>' if item["online"] else '<span class="offline">offline</span>'


def _alarm_rows(alarms: list[dict], with_device: bool = True) -> tuple[list[list[str]], list[str]]:
    rows, ids = [], []
    for a in alarms:
        key = {"device_id": a["device_id"], "type": a["type"], "source": a["source"]}
        buttons = ""
        if a["status"] == "open":
            buttons += post_button("/console/alarms/acknowledge", "Acknowledge", key, "ack")
        if a["status"] != "cleared":
            buttons += " " + post_button("/console/alarms/clear", "Clear", key, "clear")
        row = [f'<span class="{text(a["severity"])}">{text(a["severity"])}</span>', text(a["type"]),
               text(a["source"]), text(a["count"]), f'<span class="status">{text(a["status"])}</span>',
               text(a["escalation"]), ago(a["last_seen"]), text(a.get("message")), buttons]
        if with_device:
            row.insert(0, f'<a href="/console/devices/{quote(a["device_id"])}">{text(a["device_id"])}</a>')
        rows.append(row)
        ids.append(f"alarm-{a['device_id']}-{a['type']}-{a['source']}")
    return rows, ids


ALARM_HEADERS = ["severity", "type", "source", "count", "status", "escalation", "last seen", "message", ""]


def overview_page(user: str, inventory: dict, alarms: list[dict]) -> str:
    devices = inventory["devices"]
    by_role = Counter(d["role"] for d in devices)
    online_by_role = Counter(d["role"] for d in devices if d["online"])
    open_alarms = [a for a in alarms if a["status"] != "cleared"]
    tiles = [f'<div class="tile" id="tile-online"><b>{inventory["online"]}</b>online of {inventory["total"]}</div>']
    for role in sorted(by_role):
        tiles.append(f'<div class="tile" id="tile-{text(role)}"><b>{online_by_role[role]}/{by_role[role]}</b>'
                     f'{text(role)} online</div>')
    tiles.append(f'<div class="tile" id="tile-alarms"><b>{len(open_alarms)}</b>open alarms</div>')
    rows = [[f'<a href="/console/devices/{quote(d["id"])}">{text(d["id"])}</a>', text(d["role"]), _online(d),
             text(d["firmware_version"]), text(_image_kind(d)), ago(d["last_heartbeat"]), text(d["uptime_s"]),
             text(d["free_heap"]), text(d["boot_count"]), "yes" if d["safe_mode"] else "no", text(d["open_alarms"])]
            for d in devices]
    alarm_rows, alarm_ids = _alarm_rows(open_alarms)
    body = (f'<div class="tiles">{"".join(tiles)}</div><section><h2>Devices</h2>'
            + table(["device", "role", "status", "firmware", "image", "last heartbeat", "uptime s", "free heap",
                     "boots", "safe mode", "open alarms"], rows, [f"device-{d['id']}" for d in devices])
            + '</section><section><h2>Open alarms</h2>'
            + table(["device", *ALARM_HEADERS], alarm_rows, alarm_ids) + "</section>")
    return page("Fleet", body, user)


def _image_kind(d: dict) -> str | None:
    image = d.get("image") or {}
    if "wireless" not in image:
        return None
    return ("Wi-Fi " if image["wireless"] else "no Wi-Fi ") + str(image.get("variant", "")).lower()


def _ota(ota: dict | None) -> str | None:
    if not ota:
        return None
    return f"{ota.get('state', '?')}{' (on trial)' if ota.get('trial') else ''}"


def device_page(user: str, d: dict, alarms: list[dict], can_switch: bool, configured_relays: list[str]) -> str:
    state = d["state"]
    reported = state["reported"].get("relays") or {}
    desired = state["desired"].get("relays") or {}
    relay_names = sorted(set(configured_relays) | set(reported) | set(desired))
    relay_rows = []
    for name in relay_names:
        now = reported.get(name)
        target = "LOW" if now == "HIGH" else "HIGH"
        button = post_button(f"/console/devices/{quote(d['id'])}/relays/{quote(name)}", f"Switch {target}",
                             {"state": target}, "switch") if can_switch else ""
        relay_rows.append([text(name), f'<span class="reported {text(now)}">{text(now)}</span>',
                           text(desired.get(name)), button])
    health = d["health"].get("checks") or {}
    health_rows = [[text(k), "ok" if v else '<span class="critical">failing</span>'] for k, v in sorted(health.items())]
    alarm_rows, alarm_ids = _alarm_rows(alarms, with_device=False)
    info = table(["field", "value"], [
        ["status", _online(d)], ["role", text(d["role"])], ["firmware", text(d["firmware_version"])],
        ["image", text(_image_kind(d))], ["address", text(f"{d['address']}:{d['port']}" if d["address"] else None)],
        ["last heartbeat", ago(d["last_heartbeat"])], ["uptime s", text(d["uptime_s"])],
        ["free heap", text(d["free_heap"])], ["boot count", text(d["boot_count"])],
        ["safe mode", "yes" if d["safe_mode"] else "no"], ["OTA", text(_ota(d["ota"]))],
        ["state versions", text(f"reported {state['version']}, desired {state['desired_version']}")]])
    body = (f'<h1>{text(d["id"])}</h1><section><h2>Device</h2>{info}</section>'
            f'<section><h2>Health</h2>{table(["check", "result"], health_rows)}</section>')
    if d["role"] == "relays":
        body += (f'<section id="relays"><h2>Relays</h2>'
                 f'{table(["relay", "reported", "desired", ""], relay_rows, [f"relay-{n}" for n in relay_names])}'
                 '<p>Switches set the desired state; the device applies it at its next state poll '
                 'and reports it back (reported is empty until it first does).</p></section>')
    if d["role"] == "sensors":
        body += (f'<section><h2>Sensors</h2><canvas id="chart" width="900" height="260" '
                 f'data-src="/console/devices/{quote(d["id"])}/sensors.json"></canvas>'
                 '<p id="chart-legend"></p><p id="chart-status">waiting for samples</p></section>')
    body += f'<section><h2>Alarms</h2>{table(ALARM_HEADERS, alarm_rows, alarm_ids)}</section>'
    return page(d["id"], body, user)


def alarms_page(user: str, alarms: list[dict]) -> str:
    rows, ids = _alarm_rows(alarms)
    return page("Alarms", f'<section><h1>Alarms</h1>{table(["device", *ALARM_HEADERS], rows, ids)}</section>', user)


def rollouts_page(user: str, rollouts: list[dict]) -> str:
    rows = [[text(r["name"]), text(r["artifact"]), text(r["version"]), f'<span class="rollout-state">{text(r["state"])}</span>',
             text(", ".join(r["canaries"])), text(r.get("reason")), ago(r["created_at"])] for r in rollouts]
    return page("Rollouts", '<section><h1>Rollouts</h1>'
                + table(["name", "artefact", "version", "state", "canaries", "reason", "created"], rows,
                        [f"rollout-{r['name']}" for r in rollouts]) + "</section>", user)
