"""Maintenance that runs itself: the window's plan, and each step it takes on its own.

A maintenance lists its components with the status each takes during the window
(``maintenance_components``). Scheduling records that plan and leaves the components as they
are; at ``scheduled_for`` the start sets them (keeping the status each had), at
``scheduled_until`` the completion puts each back, unless someone changed it meanwhile.
Before the start, subscribers are reminded once (``remind_before_minutes``); after a
completion, a maintenance with an ``rrule`` schedules its next occurrence.

Every step is a ``MaintenanceStep`` posted through ``broadcaster.posting`` by the worker's cron
(``broadcaster.jobs.maintenance``) with one idempotency key per maintenance, step and window:
``plan_step`` runs inside the posting transaction, re-reads the row and refuses a step that is
no longer due (``StepNotDue``: another worker, an edit or a commander got there first), so the
update, the component changes and this bookkeeping commit together, exactly once.
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
from broadcaster.db import incident_components, incidents, maintenance_components, updates, utcnow
from broadcaster.domain import recurrence
from broadcaster.domain.components import components_by_id, require_components
from broadcaster.domain.incidents import Posted, incident_component_ids, parse_time
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.models import ComponentStatus, IncidentKind, MaintenanceStatus
from broadcaster.post_requests import FollowUp, MaintenanceStep, NewIncident
from broadcaster.render import iso
from broadcaster.schemas import IncidentIn, UpdateIn

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


# --- the steps --------------------------------------------------------------------------------


async def due(conn: AsyncConnection, step: Step, now: datetime) -> list[MaintenanceStep]:
    """The maintenances for which ``step`` is due at ``now``, oldest edge first."""
    c = incidents.c
    query = select(c.id, c.scheduled_for, c.scheduled_until).where(c.kind == MAINTENANCE)
    if step is Step.REMIND:
        query = query.where(c.status == SCHEDULED, c.remind_at <= now, c.scheduled_for > now).order_by(c.remind_at)
    elif step is Step.START:
        query = query.where(c.status == SCHEDULED, c.auto_transition.is_(True), c.scheduled_for <= now)
        query = query.order_by(c.scheduled_for)
    elif step is Step.COMPLETE:
        query = query.where(c.status.in_(ACTIVE), c.auto_transition.is_(True), c.scheduled_until <= now)
        query = query.order_by(c.scheduled_until)
    else:
        query = query.where(c.rrule.is_not(None), c.recurred_at.is_(None), c.status == COMPLETED)
    rows = (await conn.execute(query)).mappings().all()
    edge_of = {Step.REMIND: "scheduled_for", Step.START: "scheduled_for", Step.COMPLETE: "scheduled_until"}
    return [MaintenanceStep(r["id"], step.value, edge(r[edge_of[step]]) if step in edge_of else "") for r in rows]


def _late_note(what: str, scheduled: datetime, now: datetime, settings: Settings) -> str:
    late_s = (now - scheduled).total_seconds()
    if late_s < 2 * settings.maintenance_interval_s + 1:  # on time: the cron's own period and a second's slack
        return ""
    return f" ({what} at {when(now)}, {_span(late_s)} after the scheduled {when(scheduled)}.)"


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{round(seconds / size)} {unit}"
    return f"{round(seconds)} s"


async def _start(conn: AsyncConnection, row: Row, now: datetime, settings: Settings) -> StepPlan:
    plan = await plan_rows(conn, row["id"])
    before = await current_statuses(conn, list(plan))
    until = f", until {when(row['scheduled_until'])}" if row["scheduled_until"] else ""
    text = row["auto_start_message"] or f"The scheduled maintenance is in progress{until}."
    text += _late_note("Started", row["scheduled_for"], now, settings)
    changes = {cid: ComponentStatus(p["status"]) for cid, p in plan.items() if cid in before}

    async def keep_before(conn: AsyncConnection, posted: Posted) -> None:
        for cid, status in before.items():
            await conn.execute(
                maintenance_components.update()
                .where(maintenance_components.c.incident_id == row["id"], maintenance_components.c.component_id == cid)
                .values(status_before=status)
            )
        await conn.execute(incidents.update().where(incidents.c.id == row["id"]).values(remind_at=None))

    update = UpdateIn(status=MaintenanceStatus.IN_PROGRESS.value, message=text, components=changes)
    return StepPlan(
        FollowUp(row["id"], update), keep_before, {"late_s": round((now - row["scheduled_for"]).total_seconds())}
    )


async def restored(conn: AsyncConnection, incident_id: str, plan: dict[str, Row]) -> dict[str, ComponentStatus]:
    """Each component of the window as it should be when the window closes.

    Back to the status it had before the start, or operational, when it still has the status the
    window gave it; as it is (stated, not changed) when someone changed it meanwhile.
    """
    window = {cid: str(p["status"]) for cid, p in plan.items()}
    for cid in await incident_component_ids(conn, incident_id):
        window.setdefault(cid, ComponentStatus.UNDER_MAINTENANCE.value)  # linked by a start posted by hand
    current = await current_statuses(conn, list(window))
    result: dict[str, ComponentStatus] = {}
    for cid, status in current.items():
        if status == window[cid]:
            before = plan.get(cid, {}).get("status_before")
            result[cid] = ComponentStatus(before or ComponentStatus.OPERATIONAL.value)
        else:
            result[cid] = ComponentStatus(status)
    return result


async def _complete(conn: AsyncConnection, row: Row, now: datetime, settings: Settings) -> StepPlan:
    changes = await restored(conn, row["id"], await plan_rows(conn, row["id"]))
    text = row["auto_complete_message"] or "The scheduled maintenance is complete."
    text += _late_note("Completed", row["scheduled_until"], now, settings)
    update = UpdateIn(status=COMPLETED, message=text, components=changes)
    return StepPlan(
        FollowUp(row["id"], update), None, {"late_s": round((now - row["scheduled_until"]).total_seconds())}
    )


async def _remind(conn: AsyncConnection, row: Row, now: datetime, channels: Sequence[str]) -> StepPlan:
    if not channels:  # no subscriber channel is enabled: nobody to remind
        await conn.execute(incidents.update().where(incidents.c.id == row["id"]).values(remind_at=None))
        return StepPlan(None, details={"channels": []})
    minutes = max(1, round((row["scheduled_for"] - now).total_seconds() / 60))
    until = f" and is planned to end at {when(row['scheduled_until'])}" if row["scheduled_until"] else ""
    text = f"Reminder: this maintenance starts at {when(row['scheduled_for'])} (in about {minutes} min){until}."

    async def sent(conn: AsyncConnection, posted: Posted) -> None:
        await conn.execute(incidents.update().where(incidents.c.id == row["id"]).values(remind_at=None))

    update = UpdateIn(status=SCHEDULED, message=text, channels=list(channels))
    return StepPlan(FollowUp(row["id"], update), sent, {"channels": list(channels)})


async def _recur(conn: AsyncConnection, row: Row, now: datetime, settings: Settings) -> StepPlan:
    start, until = row["scheduled_for"], row["scheduled_until"]
    duration = (until - start) if until else timedelta(0)
    anchor = row["recurrence_start"] or start
    zone = recurrence.page_zone(settings.time_zone)
    following = recurrence.next_start(row["rrule"], anchor, start, duration, now, zone)
    if following is None:  # the rule is exhausted: nothing to post, only the mark
        await conn.execute(incidents.update().where(incidents.c.id == row["id"]).values(recurred_at=now))
        return StepPlan(None, details={"next": None})
    first = (
        await conn.execute(select(updates.c.body).where(updates.c.incident_id == row["id"]).order_by(updates.c.number))
    ).scalar()
    plan = await plan_rows(conn, row["id"])
    data = IncidentIn(
        title=row["name"],
        kind=MAINTENANCE,
        status=SCHEDULED,
        message=str(first or row["name"]),
        scheduled_for=following.isoformat(),
        scheduled_until=(following + duration).isoformat() if until else None,
        components={cid: ComponentStatus(p["status"]) for cid, p in plan.items()},
        deliver_notifications=False,  # on the page and in the calendar; subscribers hear at the reminder and start
        auto_transition=bool(row["auto_transition"]),
        auto_start_message=row["auto_start_message"],
        auto_complete_message=row["auto_complete_message"],
        remind_before_minutes=row["remind_before_minutes"],
        rrule=row["rrule"],
    )
    series = dict(row["meta"] or {}).get("series", row["id"])
    request, record = await plan_new(
        conn, NewIncident(data, meta={"series": series, "previous": row["id"]}), settings, anchor
    )

    async def mark(conn: AsyncConnection, posted: Posted) -> None:
        if record is not None:
            await record(conn, posted)
        await conn.execute(incidents.update().where(incidents.c.id == row["id"]).values(recurred_at=now))

    return StepPlan(request, mark, {"next": following.isoformat()})


async def plan_step(
    conn: AsyncConnection, step: MaintenanceStep, settings: Settings, subscriber_channels: Sequence[str]
) -> StepPlan:
    """The step as an update to post, checked against the row in this transaction (``StepNotDue`` if not)."""
    row = await locked_row(conn, step.incident_id)
    now = utcnow()
    kind = Step(step.step)
    status = row["status"]
    if row["kind"] != MAINTENANCE:
        raise StepNotDue("not a maintenance", {"incident_id": "is an incident"})
    if kind is Step.REMIND and status == SCHEDULED and row["remind_at"] and row["remind_at"] <= now:
        if edge(row["scheduled_for"]) == step.window and row["scheduled_for"] > now:
            return await _remind(conn, row, now, subscriber_channels)
    elif kind is Step.START and status == SCHEDULED and row["auto_transition"]:
        if edge(row["scheduled_for"]) == step.window and row["scheduled_for"] <= now:
            return await _start(conn, row, now, settings)
    elif kind is Step.COMPLETE and status in ACTIVE and row["auto_transition"] and row["scheduled_until"]:
        if edge(row["scheduled_until"]) == step.window and row["scheduled_until"] <= now:
            return await _complete(conn, row, now, settings)
    elif kind is Step.RECUR and status == COMPLETED and row["rrule"] and row["recurred_at"] is None:
        return await _recur(conn, row, now, settings)
    raise StepNotDue("the step is no longer due", {"step": step.step})


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
