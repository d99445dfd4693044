"""Public pages, feeds and JSON as bytes, from the public view: one renderer for the app and the export.

Nothing here touches a request; the app caches what these functions return and the static
export writes the same bytes to files (with the live script switched off). A page renders in
the ``language`` it is given (default: the page's default language), updates in their
translation where they have one; ``languages`` (the offered ones) adds the hreflang links and
the language switcher, which the mirror, in the default language only, goes without. Feeds and
JSON are always in the default language.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from babel.numbers import get_decimal_symbol

from broadcaster import i18n
from broadcaster.config import Settings
from broadcaster.db import utcnow
from broadcaster.i18n import N_
from broadcaster.models import COMPONENT_SEVERITY, ComponentStatus
from broadcaster.render import environment, iso
from broadcaster.views import statuspage_v2
from broadcaster.views.public import IncidentView, Row, Snapshot, UpdateView, localized_view, page_info
from broadcaster.views.uptime import WINDOW_DAYS, Uptime

HTML = "text/html; charset=utf-8"
JSON = "application/json"
ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"  # assets are content-hashed: a change is a new name
HISTORY_PER_PAGE = 20
LIVE_URL = "/events"
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# The page's overall state in Atlassian's words: the v2 JSON keeps them, the page translates them.
PAGE_STATES = (
    N_("All Systems Operational"),
    N_("Service Under Maintenance"),
    N_("Minor Service Outage"),
    N_("Partial System Outage"),
    N_("Major System Outage"),
    N_("Partially Degraded Service"),
    N_("Degraded System Service"),
)
DOMAIN = "page"  # the catalog these words are in (broadcaster.i18n.domains)
CONTACT_STATES = {"open": N_("Open"), "busy": N_("Busy"), "closed": N_("Closed")}
# Languages whose nouns keep their capital inside a sentence ("Betroffen: API (Teilausfall)").
CAPITALIZED_NOUNS = frozenset({"de"})


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
        body = (templates_dir / "status_page" / "assets" / name).read_bytes() + _run_rules()
        stem, _, ext = name.rpartition(".")
        url = f"/assets/{stem}.{hashlib.sha256(body).hexdigest()[:12]}.{ext}"
        found[url] = Asset(name, url, body, content_type)
    return found


def _run_rules() -> bytes:
    """CSS for a run of like days drawn by one element (``uptime_view``): ``n<k>`` is k days wide,
    its day gaps painted by a gradient, so it looks like k bars at a fraction of the markup."""
    rules = [f".bars i.n{k}{{flex-grow:{k};--n:{k}}}" for k in range(2, WINDOW_DAYS + 1)]
    gaps = (
        ".bars i.run{background-image:repeating-linear-gradient(90deg,transparent 0 "
        "calc((100% + 1px)/var(--n) - 1px),var(--bg) 0 calc((100% + 1px)/var(--n)))}"
    )
    return ("\n" + gaps + "\n" + "".join(rules) + "\n").encode()


@lru_cache(maxsize=8)
def inline_css(templates_dir: Path) -> str:
    """The page's stylesheet, inlined: a first visit paints without waiting for another request
    (the CSP allows it by hash; the file stays served at its hashed URL for pages cached before)."""
    return next(a.body for a in assets(templates_dir).values() if a.name == "status.css").decode().strip()


def inline_css_hash(templates_dir: Path) -> str:
    return _csp_hash(inline_css(templates_dir))


@lru_cache(maxsize=8)
def inline_js(templates_dir: Path) -> str:
    """The optional script, inlined so that the page costs one request less (CSP allows it by hash)."""
    return (templates_dir / "status_page" / "assets" / "live.js").read_text(encoding="utf-8").strip()


def inline_js_hash(templates_dir: Path) -> str:
    return _csp_hash(inline_js(templates_dir))


def _csp_hash(source: str) -> str:
    """A CSP source expression allowing the inline element whose content is ``source``."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()}'"


def _xmlsafe(value: Any) -> str:
    return _XML_ILLEGAL.sub("", str(value))


def _rfc822(value: datetime | None) -> str:
    return format_datetime(value or utcnow(), usegmt=True)


_PAGE_WORDS = i18n.Translator(DOMAIN)  # the page's own catalog first, as its templates
gettext = _PAGE_WORDS.gettext
ngettext = _PAGE_WORDS.ngettext


def contact_state(value: str) -> str:
    """A contact channel's state (open, busy, closed) in the current language."""
    known = CONTACT_STATES.get(value)
    return gettext(known) if known else value.replace("_", " ").capitalize()


def in_sentence(label: str) -> str:
    """A label as it reads inside a sentence: lower case, unless the language capitalizes nouns."""
    base = i18n.current_language().partition("-")[0]
    return label if base in CAPITALIZED_NOUNS else label.lower()


def percent(value: float) -> str:
    """``99.5`` as "99.50", with the current language's decimal sign ("99,50" in French)."""
    text = f"{value:.2f}"  # rounded as before, whatever the language
    try:
        return text.replace(".", get_decimal_symbol(i18n.current_language().replace("-", "_")))
    except (ValueError, LookupError):
        return text


@lru_cache(maxsize=8)
def _env(templates_dir: Path) -> jinja2.Environment:
    env = environment(templates_dir).overlay()
    env.filters["iso"] = lambda v: iso(v) or ""
    env.filters["rfc822"] = _rfc822
    env.filters["xmlsafe"] = _xmlsafe
    env.filters["contact_state"] = contact_state
    env.filters["in_sentence"] = in_sentence
    return env


def render(
    settings: Settings,
    template: str,
    *,
    live: bool = True,
    language: str | None = None,
    languages: Sequence[str] = (),
    path: str = "/",
    **context: Any,
) -> bytes:
    """Render ``templates/status_page/<template>`` with the page's common context, in ``language``
    (default: the page's default language); ``languages``: the offered ones, for the hreflang
    links and the switcher to ``path`` in each."""
    tdir = settings.templates_dir
    page = context.pop("page", None) or page_info(settings, None)
    with i18n.using(language or settings.default_language):
        html = (
            _env(tdir)
            .get_template(f"status_page/{template}")
            .render(
                page=page,
                base="",
                inline_css=inline_css(tdir),
                inline_js=inline_js(tdir),
                live_url=LIVE_URL if live else "",
                subscribe_url="/subscribe",
                sandbox=bool(settings.sandbox_url),
                languages=tuple(languages) if len(languages) > 1 else (),
                path=path,
                here=settings.public_url.rstrip("/") + path,
                **context,
            )
        )
    return html.encode()


# --- views for templates -----------------------------------------------------------------------


def uptime_view(uptime: Uptime | None, name: str = "") -> dict[str, Any] | None:
    """The bars of ``uptime`` (component ``name``'s) and their words, in the current language."""
    if uptime is None:
        return None
    # Only days with something to say carry a tooltip; a run of days with nothing to say (no data
    # yet, or fine) is one element of that many days (``_run_rules``): a new component's 89 empty
    # days are 20 bytes, not 1.6 KB, and the browser lays out one box instead of 89.
    marks = []  # (CSS class, tooltip) per day
    for d in uptime.days:
        if d.uptime is None or (d.uptime == 1.0 and d.level <= 0):
            marks.append(("u-1" if d.level < 0 else "", ""))
        else:
            text = gettext("%(percent)s%% uptime", percent=percent(100 * d.uptime))
            marks.append((f"u{d.level}", f"{d.day.isoformat()}: {text}"))
    bars = []
    for (level_class, title), run in itertools.groupby(marks):  # a tooltip names its day: never a run
        span = len(list(run))
        classes = (level_class, f"run n{span}") if span > 1 else (level_class,)
        bars.append({"class": " ".join(filter(None, classes)), "title": title, "span": span})
    count = len(uptime.days)
    label = (
        gettext("no data yet")
        if uptime.percent is None
        else gettext("%(percent)s%% uptime", percent=percent(uptime.percent))
    )
    return {
        "bars": bars,
        "label": label,
        "summary": ngettext(
            "%(name)s: %(label)s over the last day",
            "%(name)s: %(label)s over the last %(num)d days",
            count,
            name=name,
            label=label,
        ),
        "ago": ngettext("%(num)d day ago", "%(num)d days ago", count),
    }


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
    return uptime_view(snapshot.uptime.get(component["id"]), component["name"]) if component["showcase"] else None


def subscribable(snapshot: Snapshot) -> list[dict[str, str]]:
    groups = {c["id"]: c["name"] for c in snapshot.components if c["is_group"]}
    return [
        {"id": c["id"], "label": f"{groups[c['group_id']]} - {c['name']}" if c["group_id"] in groups else c["name"]}
        for c in snapshot.components
        if not c["is_group"]
    ]


# --- resources -------------------------------------------------------------------------------


def _localizer(settings: Settings, language: str | None) -> Callable[[Sequence[IncidentView]], list[IncidentView]]:
    default = settings.default_language
    reader = language or default
    return lambda views: [localized_view(v, reader, default) for v in views]


def index_html(
    settings: Settings,
    snapshot: Snapshot,
    live: bool = True,
    *,
    language: str | None = None,
    languages: Sequence[str] = (),
) -> bytes:
    local = _localizer(settings, language)
    unresolved = snapshot.unresolved
    status = statuspage_v2.status_json(snapshot)
    with i18n.using(language or settings.default_language):  # the uptime labels are words too
        groups = component_groups(snapshot)
        status = {**status, "description": gettext(status["description"])}
    return render(
        settings,
        "index.html",
        live=live,
        language=language,
        languages=languages,
        page=snapshot.page,
        status=status,
        incidents=local(unresolved),
        active_maintenances=local(snapshot.active_maintenances),
        upcoming=local(snapshot.upcoming),
        groups=groups,
        subscribable=subscribable(snapshot),
        recent=local([i for i in snapshot.incidents if i not in unresolved][:10]),
    )


def incident_html(
    settings: Settings,
    page: Row,
    incident: IncidentView,
    names: dict[str, str],
    live: bool = True,
    *,
    language: str | None = None,
    languages: Sequence[str] = (),
) -> bytes:
    affected = [names[c] for c in incident.component_ids if c in names]
    return render(
        settings,
        "incident.html",
        live=live,
        language=language,
        languages=languages,
        path=f"/incidents/{incident.id}",
        page=page,
        incident=_localizer(settings, language)([incident])[0],
        affected=affected,
    )


def history_url(number: int) -> str:
    return "/history" if number <= 1 else f"/history/{number}"


def history_html(
    settings: Settings,
    page: Row,
    items: list[IncidentView],
    number: int,
    pages: int,
    live: bool = True,
    *,
    language: str | None = None,
    languages: Sequence[str] = (),
) -> bytes:
    return render(
        settings,
        "history.html",
        live=live,
        language=language,
        languages=languages,
        path=history_url(number),
        page=page,
        items=_localizer(settings, language)(items),
        number=number,
        pages=pages,
        page_url=history_url,
    )


def not_found_html(settings: Settings, language: str | None = None) -> bytes:
    return render(settings, "not_found.html", live=False, language=language)


def feed(settings: Settings, page: Row, entries: list[tuple[Row, UpdateView]], kind: str) -> bytes:
    """The Atom (``kind="atom"``) or RSS feed of the newest updates, in the default language."""
    updated = entries[0][1].created_at if entries else page.get("updated_at") or utcnow()
    template = "feed.atom.xml" if kind == "atom" else "feed.rss.xml"
    return render(settings, template, live=False, page=page, entries=entries, updated=updated)


def api_json(snapshot: Snapshot, path: str) -> bytes:
    """``/api/v2/<path>`` as bytes."""
    return json.dumps(statuspage_v2.ENDPOINTS[path](snapshot), separators=(",", ":"), ensure_ascii=False).encode()
