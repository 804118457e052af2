"""A tiny HTML builder: every value goes through escape(); markup is only what this module writes."""

from __future__ import annotations

import time
from html import escape

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;gap:1.2rem;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header form{margin-left:auto}
main{padding:1rem;max-width:1100px}section{background:#fff;border-radius:6px;padding:.8rem 1rem;margin:0 0 1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e5ea}
.online{color:#0a7d32;font-weight:600}.offline{color:#a8071a;font-weight:600}
.critical{color:#a8071a;font-weight:600}.warning{color:#ad6800}.info{color:#555}
.tiles{display:flex;gap:1rem}.tile{background:#fff;border-radius:6px;padding:.8rem 1.2rem;min-width:9rem}
.tile b{font-size:1.8rem;display:block}button{cursor:pointer}.HIGH{color:#0a7d32;font-weight:600}
"""


def page(title: str, body: str, user: str | None = None) -> str:
    nav = ""
    if user is not None:
        nav = ('<a href="/console/">Fleet</a><a href="/console/alarms">Alarms</a>'
               '<a href="/console/rollouts">Rollouts</a>'
               f'<span>{escape(user)}</span><form method="post" action="/console/logout">'
               '<button type="submit">Log out</button></form>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · fleet</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style>'
            f'<script src="/console/static/console.js" defer></script></head>'
            f'<body><header><strong>fleet console</strong>{nav}</header><main>{body}</main></body></html>')


def table(headers: list[str], rows: list[list[str]], row_ids: list[str] | None = None) -> str:
    """Cells are already-safe HTML (use text() for values)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        rid = f' id="{escape(row_ids[i])}"' if row_ids else ""
        body.append(f"<tr{rid}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    empty = f'<tr><td colspan="{len(headers)}">none</td></tr>' if not rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}{empty}</tbody></table>"


def text(value) -> str:
    return "" if value is None else escape(str(value))


def ago(t: float | None) -> str:
    if t is None:
        return "never"
    s = max(0, int(time.time() - t))
    return f"{s} s ago" if s < 120 else f"{s // 60} min ago" if s < 7200 else f"{s // 3600} h ago"


def post_button(action: str, label: str, fields: dict[str, str], css: str = "") -> str:
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(str(v))}">' for k, v in fields.items())
    cls = f' class="{escape(css)}"' if css else ""
    return (f'<form method="post" action="{escape(action)}" style="display:inline">{hidden}'
            f'<button type="submit"{cls}>{escape(label)}</button></form>')
