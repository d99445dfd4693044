"""What the public sees, read from the database once per change: the page's snapshot.

The status page, the Statuspage-compatible JSON, the feeds and the static export all render
from these objects, so they cannot disagree. Drills never appear here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.config import Settings
from broadcaster.db import incident_components, incidents, updates, utcnow
from broadcaster.domain.components import list_components
from broadcaster.domain.contact_channels import ContactChannel, load_channels, needs_banner
from broadcaster.domain.incidents import derived_impact, list_updates, update_changes
from broadcaster.domain.page_brand import Brand, load_brand
from broadcaster.models import CLOSED_STATUSES, IMPACT_RANK, OPEN_INCIDENT_STATUSES, Impact, IncidentKind
from broadcaster.render import html_to_text, markdown_to_html
from broadcaster.views.uptime import Uptime, uptime_by_component

Row = dict[str, Any]
RECENT_LIMIT = 50
UPCOMING_STATUSES = ("scheduled",)
ACTIVE_MAINTENANCE_STATUSES = ("in_progress", "verifying")
UNRESOLVED_STATUSES = tuple(s.value for s in OPEN_INCIDENT_STATUSES)
REOPENING_STATUSES = ("identified", "investigating", "monitoring", "in_progress", "verifying")

_PUBLIC_UPDATE = (updates.c.incident_id == incidents.c.id) & updates.c.public.is_(True)
# In a query on incidents: it has a public update / the status of its latest public update.
HAS_PUBLIC_UPDATE = exists().where(_PUBLIC_UPDATE).correlate(incidents)
PUBLIC_STATUS = (
    select(updates.c.status)
    .where(_PUBLIC_UPDATE)
    .order_by(updates.c.number.desc())
    .limit(1)
    .correlate(incidents)
    .scalar_subquery()
)


@dataclass(frozen=True, slots=True)
class UpdateView:
    """One update as published: body as sanitized HTML and as the plain text derived from it."""

    id: str
    incident_id: str
    number: int
    status: str
    body_html: str
    body_text: str
    created_at: datetime
    display_at: datetime
    deliver_notifications: bool
    changes: tuple[Row, ...]  # {code, name, old_status, new_status}
    translations: Mapping[str, Row] = field(default_factory=dict)  # {"fr": {"title"?: str, "message": str}}
    language: str = ""  # the language body_html is in once localized ("": not localized, the default)


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An incident or maintenance with its updates, newest first."""

    row: Row
    updates: tuple[UpdateView, ...]
    component_ids: tuple[str, ...]

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def is_maintenance(self) -> bool:
        return bool(self.row["kind"] == IncidentKind.MAINTENANCE.value)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the front page and the v2 API need, read in one go."""

    page: Row  # id, name, url, time_zone, updated_at; brand, contact, contact_banner (page_info)
    components: tuple[Row, ...]
    incidents: tuple[IncidentView, ...]  # unresolved, then the most recent (resolved included)
    maintenances: tuple[IncidentView, ...]
    uptime: dict[str, Uptime] = field(default_factory=dict)
    built_at: datetime = field(default_factory=utcnow)

    @property
    def unresolved(self) -> list[IncidentView]:
        return [i for i in self.incidents if i.row["status"] in UNRESOLVED_STATUSES]

    @property
    def upcoming(self) -> list[IncidentView]:
        return [m for m in self.maintenances if m.row["status"] in UPCOMING_STATUSES]

    @property
    def active_maintenances(self) -> list[IncidentView]:
        return [m for m in self.maintenances if m.row["status"] in ACTIVE_MAINTENANCE_STATUSES]

    @property
    def component_by_id(self) -> dict[str, Row]:
        return {c["id"]: c for c in self.components}


def update_view(row: Row, changes: Sequence[Row]) -> UpdateView:
    body_html = markdown_to_html(row["body"])
    return UpdateView(
        id=row["id"],
        incident_id=row["incident_id"],
        number=row["number"],
        status=row["status"],
        body_html=body_html,
        body_text=html_to_text(body_html),
        created_at=row["created_at"],
        display_at=row["display_at"],
        deliver_notifications=bool(row["deliver_notifications"]),
        changes=tuple(
            {
                "code": c["component_id"],
                "name": c["display_name"],
                "old_status": c["old_status"],
                "new_status": c["new_status"],
            }
            for c in changes
        ),
        translations=_translations(row.get("translations")),
    )


def _translations(value: Any) -> dict[str, Row]:
    """The well-formed translations of an update row (a language code to a dict with a message)."""
    if not isinstance(value, Mapping):
        return {}
    return {
        str(code): dict(t) for code, t in value.items() if isinstance(t, Mapping) and isinstance(t.get("message"), str)
    }


def localized_update(update: UpdateView, language: str, default: str) -> UpdateView:
    """``update`` for a reader of ``language``: its translation when it has one, else the default text."""
    translation = update.translations.get(language) if language != default else None
    if translation is None:
        return replace(update, language=default)
    body_html = markdown_to_html(translation["message"])
    return replace(update, body_html=body_html, body_text=html_to_text(body_html), language=language)


def localized_view(view: IncidentView, language: str, default: str) -> IncidentView:
    """``view`` for a reader of ``language``: each update translated where it is, and the incident
    titled as the latest of its shown updates that retitled it in that language (else its own name)."""
    if language == default:
        return view
    shown = tuple(localized_update(u, language, default) for u in view.updates)
    title = next((str(u.translations[language]["title"]) for u in view.updates if _title(u, language)), None)
    row = {**view.row, "name": title} if title else view.row
    return replace(view, row=row, updates=shown)


def _title(update: UpdateView, language: str) -> bool:
    translation = update.translations.get(language)
    return bool(translation and isinstance(translation.get("title"), str) and translation["title"])


async def incident_views(
    conn: AsyncConnection, rows: Sequence[Row], *, public_only: bool = False
) -> list[IncidentView]:
    """Views for incident rows (in the given order), with updates and linked components.

    ``public_only`` (every public loader here): only the updates posted to the status page,
    the incident as they state it, and no view at all for an incident without one. Without
    it (the console), every update.
    """
    ids = [r["id"] for r in rows]
    grouped = await list_updates(conn, ids)
    changes = await update_changes(conn, [u["id"] for us in grouped.values() for u in us])
    linked: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        result = await conn.execute(
            select(incident_components.c.incident_id, incident_components.c.component_id).where(
                incident_components.c.incident_id.in_(ids)
            )
        )
        for incident_id, component_id in result.all():
            linked[str(incident_id)].append(str(component_id))
    views: list[IncidentView] = []
    for row in rows:
        shown, component_ids = grouped[row["id"]], linked[row["id"]]
        if public_only:
            hidden = [u for u in shown if not u["public"]]
            shown = [u for u in shown if u["public"]]
            if not shown:
                continue
            if hidden:
                row, component_ids = as_published(row, shown, hidden, changes, component_ids)
        views.append(
            IncidentView(
                row=row,
                updates=tuple(update_view(u, changes[u["id"]]) for u in shown),
                component_ids=tuple(component_ids),
            )
        )
    return views


def as_published(
    row: Row, shown: Sequence[Row], hidden: Sequence[Row], changes: dict[str, list[Row]], linked: Sequence[str]
) -> tuple[Row, list[str]]:
    """The incident row and linked components as its public updates (``shown``, newest first) left them.

    Replays what ``incidents.add_update`` does to the row over the public updates alone: the
    status, ``updated_at`` and ``next_update_at`` of the latest, ``monitoring_at`` and
    ``resolved_at``, and the impact derived from component changes (an impact set by hand is
    not recorded per update, so it stays as set). A component linked only by hidden updates
    is left out.
    """
    latest = shown[0]
    published = {
        **row,
        "status": latest["status"],
        "updated_at": latest["created_at"],
        "next_update_at": latest["next_update_at"],
        "monitoring_at": None,
        "resolved_at": None,
    }
    impact = Impact.NONE
    for update in reversed(shown):
        status, at = update["status"], update["created_at"]
        if status == "monitoring" and published["monitoring_at"] is None:
            published["monitoring_at"] = at
        if status in CLOSED_STATUSES:
            published["resolved_at"] = published["resolved_at"] or at
        elif status in REOPENING_STATUSES:
            published["resolved_at"] = None
        derived = Impact(derived_impact([c["new_status"] for c in changes[update["id"]]]))
        if IMPACT_RANK[derived] > IMPACT_RANK[impact]:
            impact = derived
    if row["kind"] != IncidentKind.MAINTENANCE.value and not row["impact_override"]:
        published["impact"] = impact.value
    named = {c["component_id"] for u in shown for c in changes[u["id"]]}
    named_hidden = {c["component_id"] for u in hidden for c in changes[u["id"]]}
    return published, [c for c in linked if c in named or c not in named_hidden]


async def _public_incidents(
    conn: AsyncConnection,
    *,
    kind: str | None = None,
    statuses: Sequence[str] | None = None,
    limit: int,
    offset: int = 0,
) -> list[Row]:
    """Incidents the public may see (no drill, at least one public update), newest first.

    ``statuses`` filters on the status their latest public update states.
    """
    query = (
        select(incidents)
        .where(incidents.c.drill.is_(False), HAS_PUBLIC_UPDATE)
        .order_by(incidents.c.created_at.desc(), incidents.c.id)
        .limit(limit)
        .offset(offset)
    )
    if kind:
        query = query.where(incidents.c.kind == kind)
    if statuses is not None:
        query = query.where(PUBLIC_STATUS.in_(list(statuses)))
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def _recent_and_open(conn: AsyncConnection, kind: str, open_statuses: Sequence[str]) -> list[Row]:
    recent = await _public_incidents(conn, kind=kind, limit=RECENT_LIMIT)
    still_open = await _public_incidents(conn, kind=kind, statuses=open_statuses, limit=1000)
    seen = {r["id"] for r in recent}
    merged = recent + [r for r in still_open if r["id"] not in seen]
    merged.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return merged


def page_info(
    settings: Settings,
    updated_at: datetime | None,
    brand: Brand | None = None,
    contact: Sequence[ContactChannel] = (),
) -> Row:
    """The page row: Statuspage's page fields, then the brand and the contact channels (``None``/empty: unset)."""
    brand = brand or Brand()
    return {
        "id": settings.page_id,
        "name": brand.page_name(settings.page_name),
        "url": settings.public_url,
        "time_zone": settings.time_zone,
        "updated_at": updated_at,
        "brand": brand,
        "contact": tuple(contact),
        "contact_banner": needs_banner(list(contact)),
    }


async def load_snapshot(conn: AsyncConnection, settings: Settings, now: datetime | None = None) -> Snapshot:
    """Read the page's state: components, recent and open incidents and maintenances, uptime."""
    now = now or utcnow()
    component_rows = await list_components(conn)
    incident_rows = await _recent_and_open(conn, IncidentKind.INCIDENT.value, UNRESOLVED_STATUSES)
    maintenance_rows = await _recent_and_open(
        conn, IncidentKind.MAINTENANCE.value, (*UPCOMING_STATUSES, *ACTIVE_MAINTENANCE_STATUSES)
    )
    incident_list = await incident_views(conn, incident_rows, public_only=True)
    maintenance_list = await incident_views(conn, maintenance_rows, public_only=True)
    times = [c["updated_at"] for c in component_rows] + [v.row["updated_at"] for v in incident_list + maintenance_list]
    uptime = await uptime_by_component(conn, [c["id"] for c in component_rows if not c["is_group"]], now)
    brand, contact = await load_brand(conn), await load_channels(conn)
    if brand.updated_at is not None:
        times.append(brand.updated_at)
    return Snapshot(
        page=page_info(settings, max(times) if times else None, brand, contact),
        components=tuple(component_rows),
        incidents=tuple(incident_list),
        maintenances=tuple(maintenance_list),
        uptime=uptime,
        built_at=now,
    )


async def load_incident(conn: AsyncConnection, incident_id: str) -> IncidentView | None:
    """One public incident or maintenance with its public updates; None if unknown, a drill or never public."""
    row = (
        (await conn.execute(select(incidents).where(incidents.c.id == incident_id, incidents.c.drill.is_(False))))
        .mappings()
        .first()
    )
    views = await incident_views(conn, [dict(row)] if row else [], public_only=True)
    return views[0] if views else None


async def load_history(conn: AsyncConnection, page: int, per_page: int) -> tuple[list[IncidentView], int]:
    """One page (1-based) of incidents and maintenances, newest first, and the number of pages."""
    total = int(
        (
            await conn.execute(
                select(func.count()).select_from(incidents).where(incidents.c.drill.is_(False), HAS_PUBLIC_UPDATE)
            )
        ).scalar()
        or 0
    )
    rows = await _public_incidents(conn, limit=per_page, offset=(page - 1) * per_page)
    pages = max(1, -(-total // per_page))
    return await incident_views(conn, rows, public_only=True), pages


async def all_incident_ids(conn: AsyncConnection) -> list[str]:
    result = await conn.execute(
        select(incidents.c.id).where(incidents.c.drill.is_(False), HAS_PUBLIC_UPDATE).order_by(incidents.c.id)
    )
    return [str(v) for v in result.scalars()]


async def recent_updates(conn: AsyncConnection, limit: int = RECENT_LIMIT) -> list[tuple[Row, UpdateView]]:
    """The newest public updates across incidents (for feeds), each with its incident row."""
    result = await conn.execute(
        select(updates, incidents.c.name.label("incident_name"), incidents.c.kind, incidents.c.impact)
        .join(incidents, incidents.c.id == updates.c.incident_id)
        .where(incidents.c.drill.is_(False), updates.c.public.is_(True))
        .order_by(updates.c.created_at.desc(), updates.c.id)
        .limit(limit)
    )
    rows = [dict(r) for r in result.mappings()]
    changes = await update_changes(conn, [r["id"] for r in rows])
    return [(r, update_view(r, changes[r["id"]])) for r in rows]
