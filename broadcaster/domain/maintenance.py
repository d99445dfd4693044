"""Maintenance that runs itself: the window's plan, and each step it takes on its own.

A maintenance lists its components with the status each takes during the window
(``maintenance_components``). Scheduling records that plan and leaves the components as they
are; at ``scheduled_for`` the start sets them (keeping the status each had), at
``scheduled_until`` the completion puts each back, unless someone changed it meanwhile.
Before the start, subscribers are reminded once (``remind_before_minutes``); after a
completion, a maintenance with an ``rrule`` schedules its next occurrence.

Each of those steps is planned by ``broadcaster.domain.maintenance_steps``; edits by
``broadcaster.domain.maintenance_edits``. This module holds the plan itself and what they share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.config import Settings
from broadcaster.db import incident_components, incidents, maintenance_components, utcnow
from broadcaster.domain import recurrence
from broadcaster.domain.components import components_by_id, require_components
from broadcaster.domain.incidents import Posted, parse_time
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.models import ComponentStatus, IncidentKind, MaintenanceStatus
from broadcaster.post_requests import FollowUp, NewIncident
from broadcaster.render import iso
from broadcaster.schemas import IncidentIn

Row = dict[str, Any]
AfterWrite = Callable[[AsyncConnection, Posted], Awaitable[None]]

SCHEDULED = MaintenanceStatus.SCHEDULED.value
ACTIVE = (MaintenanceStatus.IN_PROGRESS.value, MaintenanceStatus.VERIFYING.value)
COMPLETED = MaintenanceStatus.COMPLETED.value
MAINTENANCE = IncidentKind.MAINTENANCE.value
OPTION_FIELDS = ("auto_start_message", "auto_complete_message", "rrule", "remind_before_minutes")


class Step(StrEnum):
    """What a maintenance does by itself, in the order the cron looks for them."""

    REMIND = "remind"
    START = "start"
    COMPLETE = "complete"
    RECUR = "recur"


class StepNotDue(Conflict):
    """The step was taken or overtaken since the cron saw it: nothing is written."""


@dataclass
class StepPlan:
    """What a step or an edit posts (None: nothing to tell), what it records with it, audit details."""

    update: NewIncident | FollowUp | None
    after_write: AfterWrite | None = None
    details: dict[str, Any] = field(default_factory=dict)


def edge(value: datetime | None) -> str:
    """A window edge as it appears in a step's idempotency key."""
    return value.astimezone(UTC).isoformat() if value else ""


def when(value: datetime) -> str:
    """A time as messages print it: UTC, seconds only when there are some."""
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value.second else f"{value:%Y-%m-%d %H:%M} UTC"


def remind_at(scheduled_for: datetime, minutes: float, now: datetime) -> datetime | None:
    """When to remind; None when no reminder is wanted or the announcement itself comes within the lead."""
    if minutes <= 0:
        return None
    at = scheduled_for - timedelta(minutes=minutes)
    return at if at > now else None


def lead_minutes(value: float | None, settings: Settings) -> float:
    """A maintenance's reminder lead: its own, or the ``maintenance_remind_before_minutes`` setting."""
    return settings.maintenance_remind_before_minutes if value is None else float(value)


async def locked_row(conn: AsyncConnection, incident_id: str) -> Row:
    """The incident, locked for this transaction on PostgreSQL (SQLite has one writer anyway)."""
    query = select(incidents).where(incidents.c.id == incident_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFound("no such incident", {"incident_id": f"unknown incident {incident_id!r}"})
    return dict(row)


async def plan_rows(conn: AsyncConnection, incident_id: str) -> dict[str, Row]:
    """The maintenance's components: {component_id: {status, status_before}}."""
    result = await conn.execute(
        select(maintenance_components).where(maintenance_components.c.incident_id == incident_id)
    )
    return {r["component_id"]: dict(r) for r in result.mappings()}


async def current_statuses(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, str]:
    return {cid: str(row["status"]) for cid, row in (await components_by_id(conn, ids)).items()}


async def set_plan(conn: AsyncConnection, incident_id: str, targets: dict[str, str], before: dict[str, str]) -> None:
    """Replace the maintenance's components; ``before`` holds the statuses kept for a window under way."""
    await conn.execute(maintenance_components.delete().where(maintenance_components.c.incident_id == incident_id))
    if targets:
        await conn.execute(
            maintenance_components.insert(),
            [
                {"incident_id": incident_id, "component_id": cid, "status": status, "status_before": before.get(cid)}
                for cid, status in targets.items()
            ],
        )


def _refuse_options_on_incident(data: IncidentIn) -> None:
    for name in OPTION_FIELDS:
        if getattr(data, name) is not None:
            raise InputError("only a maintenance runs itself", {name: "only for kind maintenance"})
    if not data.auto_transition:
        raise InputError("only a maintenance runs itself", {"auto_transition": "only for kind maintenance"})


async def plan_new(
    conn: AsyncConnection, request: NewIncident, settings: Settings, anchor: datetime | None = None
) -> tuple[NewIncident, AfterWrite | None]:
    """A new incident as posted; a scheduled maintenance's components are its plan, not changed yet.

    The announcement still names them (at their current status). ``anchor`` carries a series'
    DTSTART to its next occurrence.
    """
    data = request.data
    if data.kind != MAINTENANCE:
        _refuse_options_on_incident(data)
        return request, None
    start = parse_time(data.scheduled_for, "scheduled_for")
    until = parse_time(data.scheduled_until, "scheduled_until")
    rule = None
    if data.rrule and start is not None:
        rule = recurrence.check(data.rrule, start, until, recurrence.page_zone(settings.time_zone))
    targets = {cid: status.value for cid, status in data.components.items()}
    found = await require_components(conn, targets)
    current = {cid: str(row["status"]) for cid, row in found.items()}
    if data.status == SCHEDULED:
        request = NewIncident(
            data.model_copy(update={"components": {cid: ComponentStatus(s) for cid, s in current.items()}}),
            request.drill,
            request.meta,
        )
    started = data.status in ACTIVE
    now = utcnow()

    async def record(conn: AsyncConnection, posted: Posted) -> None:
        await set_plan(conn, posted.incident_id, targets, current if started else {})
        await conn.execute(
            incidents.update()
            .where(incidents.c.id == posted.incident_id)
            .values(
                auto_transition=data.auto_transition,
                auto_start_message=data.auto_start_message or None,
                auto_complete_message=data.auto_complete_message or None,
                remind_before_minutes=data.remind_before_minutes,
                remind_at=remind_at(start, lead_minutes(data.remind_before_minutes, settings), now)
                if start and data.status == SCHEDULED
                else None,
                rrule=rule,
                recurrence_start=(anchor or start) if rule else None,
            )
        )

    return request, record


async def under_way(conn: AsyncConnection, component_id: str) -> bool:
    """Whether the component is in a maintenance in progress (its status changes then tell no one)."""
    result = await conn.execute(
        select(incidents.c.id)
        .join(incident_components, incident_components.c.incident_id == incidents.c.id)
        .where(
            incident_components.c.component_id == component_id,
            incidents.c.kind == MAINTENANCE,
            incidents.c.status.in_(ACTIVE),
        )
        .limit(1)
    )
    return result.first() is not None


def api_fields(row: Row) -> dict[str, Any]:
    """The automation's fields in the admin API's incident answer."""
    return {
        "auto_transition": bool(row.get("auto_transition", True)),
        "auto_start_message": row.get("auto_start_message"),
        "auto_complete_message": row.get("auto_complete_message"),
        "remind_before_minutes": row.get("remind_before_minutes"),
        "remind_at": iso(row.get("remind_at")),
        "rrule": row.get("rrule"),
        "sequence": int(row.get("sequence") or 0),
    }
