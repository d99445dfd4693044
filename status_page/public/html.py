"""Public pages, feeds and JSON as bytes, from the public view: one renderer for the app and the export.

Nothing here touches a request; the app caches what these functions return and the static
export writes the same bytes to files (with the live script switched off).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from broadcaster.config import Settings
from broadcaster.db import utcnow
from broadcaster.models import COMPONENT_SEVERITY, ComponentStatus
from broadcaster.render import environment, iso
from broadcaster.views import statuspage_v2
from broadcaster.views.public import IncidentView, Row, Snapshot, UpdateView, page_info
from broadcaster.views.uptime import Uptime

HTML = "text/html; charset=utf-8"
JSON = "application/json"
ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"  # assets are content-hashed: a change is a new name
HISTORY_PER_PAGE = 20
LIVE_URL = "/events"
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Asset:
    name: str  # e.g. "status.css"
    url: str  # content-hashed, e.g. "/assets/status.3f2a9c1e0b.css"
    body: bytes
    content_type: str


@lru_cache(maxsize=8)
def assets(templates_dir: Path) -> dict[str, Asset]:
    """The page's static assets by hashed URL path (read once)."""
    found: dict[str, Asset] = {}
    for name, content_type in (("status.css", "text/css; charset=utf-8"),):
        body = (templates_dir / "status_page" / "assets" / name).read_bytes()
        stem, _, ext = name.rpartition(".")
        url = f"/assets/{stem}.{hashlib.sha256(body).hexdigest()[:12]}.{ext}"
        found[url] = Asset(name, url, body, content_type)
    return found


def css_url(templates_dir: Path) -> str:
    return next(a.url for a in assets(templates_dir).values() if a.name == "status.css")


@lru_cache(maxsize=8)
def inline_js(templates_dir: Path) -> str:
    """The optional script, inlined so that the page costs one request less (CSP allows it by hash)."""
    return (templates_dir / "status_page" / "assets" / "live.js").read_text(encoding="utf-8").strip()


def inline_js_hash(templates_dir: Path) -> str:
    digest = hashlib.sha256(inline_js(templates_dir).encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _xmlsafe(value: Any) -> str:
    return _XML_ILLEGAL.sub("", str(value))


def _rfc822(value: datetime | None) -> str:
    return format_datetime(value or utcnow(), usegmt=True)


@lru_cache(maxsize=8)
def _env(templates_dir: Path) -> jinja2.Environment:
    env = environment(templates_dir).overlay()
    env.filters["iso"] = lambda v: iso(v) or ""
    env.filters["rfc822"] = _rfc822
    env.filters["xmlsafe"] = _xmlsafe
    return env


def render(settings: Settings, template: str, *, live: bool = True, **context: Any) -> bytes:
    """Render ``templates/status_page/<template>`` with the page's common context."""
    tdir = settings.templates_dir
    page = context.pop("page", None) or page_info(settings, None)
    html = (
        _env(tdir)
        .get_template(f"status_page/{template}")
        .render(
            page=page,
            base="",
            css_url=css_url(tdir),
            inline_js=inline_js(tdir),
            live_url=LIVE_URL if live else "",
            subscribe_url="/subscribe",
            sandbox=bool(settings.sandbox_url),
            **context,
        )
    )
    return html.encode()


# --- views for templates -----------------------------------------------------------------------


def uptime_view(uptime: Uptime | None) -> dict[str, Any] | None:
    if uptime is None:
        return None
    # Only days with something to say carry a tooltip: a plain day is 7 bytes, not 45.
    days = [
        {
            "day": d.day.isoformat(),
            "level": d.level,
            "text": "" if d.uptime is None or (d.uptime == 1.0 and d.level <= 0) else f"{100 * d.uptime:.2f}% uptime",
        }
        for d in uptime.days
    ]
    label = "no data yet" if uptime.percent is None else f"{uptime.percent:.2f}% uptime"
    return {"days": days, "label": label}


def _worst(statuses: list[str]) -> str:
    known = [s for s in statuses if s in COMPONENT_SEVERITY]
    return max(known, key=lambda s: COMPONENT_SEVERITY[ComponentStatus(s)], default="operational")


def component_groups(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Top-level rows in page order: groups (status = worst child) with children, lone components."""
    visible = [
        c
        for c in snapshot.components
        if c["is_group"] or not (c["only_show_if_degraded"] and c["status"] == "operational")
    ]
    children: dict[str, list[Row]] = {}
    for c in visible:
        if c["group_id"] and not c["is_group"]:
            children.setdefault(c["group_id"], []).append(c)
    groups_present = {c["id"] for c in visible if c["is_group"]}
    items: list[dict[str, Any]] = []
    for c in visible:
        if c["group_id"] and c["group_id"] in groups_present:
            continue
        if c["is_group"]:
            kids = children.get(c["id"], [])
            if not kids:
                continue
            items.append(
                {
                    "component": {**c, "status": _worst([k["status"] for k in kids])},
                    "uptime": None,
                    "children": [{"component": k, "uptime": _uptime_of(snapshot, k)} for k in kids],
                }
            )
        else:
            items.append({"component": c, "uptime": _uptime_of(snapshot, c), "children": []})
    return items


def _uptime_of(snapshot: Snapshot, component: Row) -> dict[str, Any] | None:
    return uptime_view(snapshot.uptime.get(component["id"])) if component["showcase"] else None


def subscribable(snapshot: Snapshot) -> list[dict[str, str]]:
    groups = {c["id"]: c["name"] for c in snapshot.components if c["is_group"]}
    return [
        {"id": c["id"], "label": f"{groups[c['group_id']]} - {c['name']}" if c["group_id"] in groups else c["name"]}
        for c in snapshot.components
        if not c["is_group"]
    ]


# --- resources -------------------------------------------------------------------------------


def index_html(settings: Settings, snapshot: Snapshot, live: bool = True) -> bytes:
    unresolved = snapshot.unresolved
    return render(
        settings,
        "index.html",
        live=live,
        page=snapshot.page,
        status=statuspage_v2.status_json(snapshot),
        incidents=unresolved,
        active_maintenances=snapshot.active_maintenances,
        upcoming=snapshot.upcoming,
        groups=component_groups(snapshot),
        subscribable=subscribable(snapshot),
        recent=[i for i in snapshot.incidents if i not in unresolved][:10],
    )


def incident_html(
    settings: Settings, page: Row, incident: IncidentView, names: dict[str, str], live: bool = True
) -> bytes:
    affected = [names[c] for c in incident.component_ids if c in names]
    return render(settings, "incident.html", live=live, page=page, incident=incident, affected=affected)


def history_url(number: int) -> str:
    return "/history" if number <= 1 else f"/history/{number}"


def history_html(
    settings: Settings, page: Row, items: list[IncidentView], number: int, pages: int, live: bool = True
) -> bytes:
    return render(
        settings, "history.html", live=live, page=page, items=items, number=number, pages=pages, page_url=history_url
    )


def not_found_html(settings: Settings) -> bytes:
    return render(settings, "not_found.html", live=False)


def feed(settings: Settings, page: Row, entries: list[tuple[Row, UpdateView]], kind: str) -> bytes:
    """The Atom (``kind="atom"``) or RSS feed of the newest updates."""
    updated = entries[0][1].created_at if entries else page.get("updated_at") or utcnow()
    template = "feed.atom.xml" if kind == "atom" else "feed.rss.xml"
    return render(settings, template, live=False, page=page, entries=entries, updated=updated)


def api_json(snapshot: Snapshot, path: str) -> bytes:
    """``/api/v2/<path>`` as bytes."""
    return json.dumps(statuspage_v2.ENDPOINTS[path](snapshot), separators=(",", ":"), ensure_ascii=False).encode()
