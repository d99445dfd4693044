"""Incidents and their updates: the one transaction that records an update and its outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import components, incident_components, incidents, new_id, outbox, status_changes, updates, utcnow
from broadcaster.domain.components import components_by_id, display_name, require_components, set_status
from broadcaster.domain.contact_channels import load_channels, notice_line
from broadcaster.domain.page_brand import load_brand
from broadcaster.errors import InputError, NotFound
from broadcaster.i18n import SOURCE_LANGUAGE
from broadcaster.message import ComponentChange, Message
from broadcaster.models import (
    CLOSED_STATUSES,
    COMPONENT_SEVERITY,
    IMPACT_OF_COMPONENT_STATUS,
    IMPACT_RANK,
    ComponentStatus,
    Impact,
)
from broadcaster.render import make_message
from broadcaster.schemas import IncidentIn, UpdateIn, check_status

Row = dict[str, Any]
STATUS_PAGE = "status_page"  # the channel whose presence makes an update public


@dataclass(frozen=True)
class Posted:
    """What one post recorded: the incident, its new update, and the channels to fan out to."""

    incident_id: str
    update_id: str
    channels: tuple[str, ...]
    drill: bool = False
    public: bool = True  # the status page is among its channels


def derived_impact(statuses: Sequence[str]) -> str:
    """Impact implied by component states: the worst one (major_outage -> critical, ...)."""
    worst = Impact.NONE
    for status in statuses:
        impact = IMPACT_OF_COMPONENT_STATUS.get(ComponentStatus(status), Impact.NONE)
        if IMPACT_RANK[impact] > IMPACT_RANK[worst]:
            worst = impact
    return worst.value


def parse_time(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 time with a zone, or a 422 naming ``field``."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError("invalid time", {field: "must be an ISO 8601 time with a zone"}) from None
    if parsed.tzinfo is None:
        raise InputError("invalid time", {field: "must carry a time zone (e.g. Z)"})
    return parsed


def _timestamps_for(status: str, now: datetime, current: Row | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if status == "monitoring" and not (current and current.get("monitoring_at")):
        values["monitoring_at"] = now
    if status in CLOSED_STATUSES and not (current and current.get("resolved_at")):
        values["resolved_at"] = now
    if status in ("identified", "investigating", "monitoring", "in_progress", "verifying") and current:
        values["resolved_at"] = None
    return values


async def _apply_components(conn: AsyncConnection, incident_id: str, update_id: str, changes: dict[str, str]) -> None:
    found = await require_components(conn, changes)
    for component_id, new_status in changes.items():
        component = found[component_id]
        if component["status"] != new_status:
            await set_status(conn, component, new_status, update_id)
        else:
            # Record the statement even when nothing moved, so the update lists the component.
            await conn.execute(
                status_changes.insert().values(
                    component_id=component_id,
                    update_id=update_id,
                    old_status=new_status,
                    new_status=new_status,
                    created_at=utcnow(),
                )
            )
    linked = set(await incident_component_ids(conn, incident_id))
    new_links = [{"incident_id": incident_id, "component_id": cid} for cid in changes if cid not in linked]
    if new_links:
        await conn.execute(incident_components.insert(), new_links)


async def _write_outbox(conn: AsyncConnection, update_id: str, channels: Sequence[str]) -> None:
    now = utcnow()
    if channels:
        await conn.execute(
            outbox.insert(), [{"update_id": update_id, "channel": c, "created_at": now} for c in channels]
        )


async def create_incident(
    conn: AsyncConnection,
    data: IncidentIn,
    channels: Sequence[str],
    author: str | None = None,
    drill: bool = False,
    meta: dict[str, Any] | None = None,
) -> Posted:
    """Record a new incident, its first update, component changes and outbox rows for ``channels``.

    Call inside one transaction (``engine.begin()``): all of it is durable, or none. Which
    channels an update goes to is ``broadcaster.posting``'s decision, not this module's.
    """
    check_status(data.kind, data.status)
    await require_components(conn, data.components)
    scheduled_for = parse_time(data.scheduled_for, "scheduled_for")
    scheduled_until = parse_time(data.scheduled_until, "scheduled_until")
    if data.kind == "maintenance" and scheduled_for is None:
        raise InputError("a maintenance needs its window", {"scheduled_for": "required for a maintenance"})
    if scheduled_for and scheduled_until and scheduled_until <= scheduled_for:
        raise InputError("empty window", {"scheduled_until": "must be after scheduled_for"})
    now = utcnow()
    if data.kind == "maintenance":
        impact = Impact.MAINTENANCE.value
    else:
        impact = data.impact.value if data.impact else derived_impact([s.value for s in data.components.values()])
    incident_id, update_id = new_id(), new_id()
    next_update_at = now + timedelta(minutes=data.next_update_in_minutes) if data.next_update_in_minutes else None
    await conn.execute(
        incidents.insert().values(
            id=incident_id,
            kind=data.kind,
            name=data.title,
            status=data.status,
            impact=impact,
            impact_override=data.impact is not None,
            drill=drill,
            created_at=now,
            updated_at=now,
            started_at=now,
            scheduled_for=scheduled_for,
            scheduled_until=scheduled_until,
            next_update_at=next_update_at,
            template_id=data.template_id,
            meta=meta or {},
            **_timestamps_for(data.status, now),
        )
    )
    await _insert_update(conn, incident_id, update_id, 1, data, now, next_update_at, channels, author)
    await _apply_components(conn, incident_id, update_id, {k: v.value for k, v in data.components.items()})
    await _write_outbox(conn, update_id, channels)
    return Posted(incident_id, update_id, tuple(channels), drill, STATUS_PAGE in channels)


async def _insert_update(
    conn: AsyncConnection,
    incident_id: str,
    update_id: str,
    number: int,
    data: UpdateIn,
    now: datetime,
    next_update_at: datetime | None,
    channels: Sequence[str],
    author: str | None,
) -> None:
    await conn.execute(
        updates.insert().values(
            id=update_id,
            incident_id=incident_id,
            number=number,
            status=data.status,
            body=data.message,
            created_at=now,
            display_at=now,
            deliver_notifications=data.deliver_notifications,
            channels=list(channels),
            public=STATUS_PAGE in channels,
            next_update_at=next_update_at,
            agent=data.agent.model_dump() if data.agent else {},
            translations={code: t.model_dump(exclude_none=True) for code, t in data.translations.items()},
            author=author,
        )
    )


async def add_update(
    conn: AsyncConnection, incident_id: str, data: UpdateIn, channels: Sequence[str], author: str | None = None
) -> Posted:
    """Record a follow-up update and its outbox rows in one transaction (call inside ``engine.begin()``)."""
    query = select(incidents).where(incidents.c.id == incident_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    incident = (await conn.execute(query)).mappings().first()
    if incident is None:
        raise NotFound("no such incident", {"incident_id": f"unknown incident {incident_id!r}"})
    check_status(incident["kind"], data.status)
    changes = {k: v.value for k, v in data.components.items()}
    await require_components(conn, changes)
    if data.status in CLOSED_STATUSES and not changes and STATUS_PAGE in channels:
        # Closing an incident restores what it affected, unless the commander said otherwise
        # (or the close is not public: the page would change while saying nothing).
        affected = await incident_component_ids(conn, incident_id)
        changes = {cid: ComponentStatus.OPERATIONAL.value for cid in affected}
    now = utcnow()
    number = (
        int(
            (
                await conn.execute(select(func.max(updates.c.number)).where(updates.c.incident_id == incident_id))
            ).scalar()
            or 0
        )
        + 1
    )
    update_id = new_id()
    next_update_at = now + timedelta(minutes=data.next_update_in_minutes) if data.next_update_in_minutes else None
    if data.status in CLOSED_STATUSES:
        next_update_at = None
    values: dict[str, Any] = {
        "status": data.status,
        "updated_at": now,
        "next_update_at": next_update_at,
        "reminded_at": None,
        **_timestamps_for(data.status, now, dict(incident)),
    }
    if incident["kind"] != "maintenance":
        if data.impact is not None:
            values.update(impact=data.impact.value, impact_override=True)
        elif not incident["impact_override"] and changes:
            derived = derived_impact(list(changes.values()))
            if IMPACT_RANK[Impact(derived)] > IMPACT_RANK[Impact(incident["impact"])]:
                values["impact"] = derived
    await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(**values))
    await _insert_update(conn, incident_id, update_id, number, data, now, next_update_at, channels, author)
    await _apply_components(conn, incident_id, update_id, changes)
    await _write_outbox(conn, update_id, channels)
    return Posted(incident_id, update_id, tuple(channels), bool(incident["drill"]), STATUS_PAGE in channels)


async def incident_component_ids(conn: AsyncConnection, incident_id: str) -> list[str]:
    result = await conn.execute(
        select(incident_components.c.component_id).where(incident_components.c.incident_id == incident_id)
    )
    return [str(value) for value in result.scalars()]


async def get_incident_row(conn: AsyncConnection, incident_id: str) -> Row:
    row = (await conn.execute(select(incidents).where(incidents.c.id == incident_id))).mappings().first()
    if row is None:
        raise NotFound("no such incident", {"incident_id": f"unknown incident {incident_id!r}"})
    return dict(row)


async def get_update_row(conn: AsyncConnection, update_id: str) -> Row:
    row = (await conn.execute(select(updates).where(updates.c.id == update_id))).mappings().first()
    if row is None:
        raise NotFound("no such update", {"update_id": f"unknown update {update_id!r}"})
    return dict(row)


async def list_updates(conn: AsyncConnection, incident_ids: Sequence[str]) -> dict[str, list[Row]]:
    """Updates per incident, newest first."""
    grouped: dict[str, list[Row]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return grouped
    result = await conn.execute(
        select(updates).where(updates.c.incident_id.in_(list(incident_ids))).order_by(updates.c.number.desc())
    )
    for row in result.mappings():
        grouped[row["incident_id"]].append(dict(row))
    return grouped


async def update_changes(conn: AsyncConnection, update_ids: Sequence[str]) -> dict[str, list[Row]]:
    """Component changes recorded by each update, with the component's display name."""
    grouped: dict[str, list[Row]] = {u: [] for u in update_ids}
    if not update_ids:
        return grouped
    result = await conn.execute(
        select(status_changes, components.c.name, components.c.group_id)
        .join(components, components.c.id == status_changes.c.component_id)
        .where(status_changes.c.update_id.in_(list(update_ids)))
        .order_by(status_changes.c.id)
    )
    rows = [dict(r) for r in result.mappings()]
    groups = await components_by_id(conn, [r["group_id"] for r in rows if r["group_id"]])
    for row in rows:
        row["display_name"] = display_name(row, groups)
        grouped[row["update_id"]].append(row)
    return grouped


async def list_incidents(
    conn: AsyncConnection,
    *,
    kind: str | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = 50,
    offset: int = 0,
    include_drills: bool = False,
) -> list[Row]:
    query = select(incidents).order_by(incidents.c.created_at.desc(), incidents.c.id).limit(limit).offset(offset)
    if kind:
        query = query.where(incidents.c.kind == kind)
    if statuses is not None:
        query = query.where(incidents.c.status.in_(list(statuses)))
    if not include_drills:
        query = query.where(incidents.c.drill.is_(False))
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def components_as_of(conn: AsyncConnection, incident_id: str, number: int) -> list[ComponentChange]:
    """The incident's components as the update ``number`` left them (reproducible renditions)."""
    result = await conn.execute(
        select(status_changes, components.c.name, components.c.group_id)
        .join(updates, updates.c.id == status_changes.c.update_id)
        .join(components, components.c.id == status_changes.c.component_id)
        .where(updates.c.incident_id == incident_id, updates.c.number <= number)
        .order_by(updates.c.number, status_changes.c.id)
    )
    rows = [dict(r) for r in result.mappings()]
    groups = await components_by_id(conn, [r["group_id"] for r in rows if r["group_id"]])
    latest: dict[str, ComponentChange] = {}
    for row in rows:
        first_old = latest[row["component_id"]].old_status if row["component_id"] in latest else row["old_status"]
        latest[row["component_id"]] = ComponentChange(
            id=row["component_id"], name=display_name(row, groups), new_status=row["new_status"], old_status=first_old
        )
    return sorted(latest.values(), key=lambda c: (-COMPONENT_SEVERITY[ComponentStatus(c.new_status)], c.name))


async def translated_titles(conn: AsyncConnection, incident_id: str, number: int) -> dict[str, str]:
    """The incident's title per language as its updates up to ``number`` set it (the latest wins)."""
    result = await conn.execute(
        select(updates.c.translations)
        .where(updates.c.incident_id == incident_id, updates.c.number <= number)
        .order_by(updates.c.number)
    )
    titles: dict[str, str] = {}
    for (translations,) in result:
        for code, value in (translations or {}).items():
            if isinstance(value, dict) and value.get("title"):
                titles[code] = str(value["title"])
    return titles


async def load_message(
    conn: AsyncConnection, update_id: str, page_name: str, public_url: str, language: str = SOURCE_LANGUAGE
) -> Message:
    """The ``Message`` every channel renders for ``update_id`` in the page's default ``language``
    (``render.localized`` gives a reader's), with the page's brand and contact line now."""
    update = await get_update_row(conn, update_id)
    incident = await get_incident_row(conn, update["incident_id"])
    titles = await translated_titles(conn, incident["id"], update["number"])
    changes = await components_as_of(conn, incident["id"], update["number"])
    brand = await load_brand(conn)
    logo = brand.image_url("logo")
    return make_message(
        incident=incident,
        update=update,
        components=changes,
        page_name=brand.page_name(page_name),
        public_url=public_url,
        logo_url=f"{public_url}{logo}" if logo else None,
        accent_color=brand.accent_color,
        contact_notice=notice_line(await load_channels(conn)),
        language=language,
        titles=titles,
    )
