"""The steps a maintenance takes by itself: remind, start, complete, schedule the next occurrence.

Every step is a ``MaintenanceStep`` posted through ``broadcaster.posting`` by the worker's cron
(``broadcaster.jobs.maintenance``) with one idempotency key per maintenance, step and window:
``plan_step`` runs inside the posting transaction, re-reads the row and refuses a step that is
no longer due (``StepNotDue``: another worker, an edit or a commander got there first), so the
update, the component changes and this bookkeeping commit together, exactly once. A step
also waits (``ORDER_WAIT_S`` at most) while the update just before it is still going out, so
that nobody hears of the end before the start: a worker catching up posts both at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.config import Settings
from broadcaster.db import deliveries, incidents, maintenance_components, outbox, updates, utcnow
from broadcaster.domain import recurrence
from broadcaster.domain.incidents import Posted, incident_component_ids
from broadcaster.domain.maintenance import (
    ACTIVE,
    COMPLETED,
    MAINTENANCE,
    SCHEDULED,
    Row,
    Step,
    StepNotDue,
    StepPlan,
    current_statuses,
    edge,
    locked_row,
    plan_new,
    plan_rows,
    when,
)
from broadcaster.models import ComponentStatus, DeliveryState, MaintenanceStatus
from broadcaster.post_requests import FollowUp, MaintenanceStep, NewIncident
from broadcaster.schemas import IncidentIn, UpdateIn

# How long after an update of the maintenance its next step may wait for that update's first
# sends: a subscriber whose provider is slow or down holds the step back this long at most.
ORDER_WAIT_S = 30.0
# A first attempt not made or not finished; a row waiting for a retry does not hold the step back.
NOT_SENT_YET = (DeliveryState.PENDING.value, DeliveryState.SENDING.value)


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


def _late(scheduled: datetime, now: datetime, settings: Settings) -> bool:
    """Later than the cron's own period (and a second's slack) allows: a worker is catching up."""
    return (now - scheduled).total_seconds() >= 2 * settings.maintenance_interval_s + 1


async def _still_going_out(conn: AsyncConnection, incident_id: str, now: datetime) -> bool:
    """Whether an update of the incident posted in the last ``ORDER_WAIT_S`` is not fanned out and sent yet."""
    recent = select(updates.c.id).where(
        updates.c.incident_id == incident_id, updates.c.created_at > now - timedelta(seconds=ORDER_WAIT_S)
    )
    pending = or_(
        exists().where(outbox.c.update_id.in_(recent), outbox.c.done_at.is_(None)),
        exists().where(deliveries.c.update_id.in_(recent), deliveries.c.state.in_(NOT_SENT_YET)),
    )
    return bool((await conn.execute(select(pending))).scalar())


def _late_note(what: str, scheduled: datetime, now: datetime, settings: Settings) -> str:
    if not _late(scheduled, now, settings):
        return ""
    late_s = (now - scheduled).total_seconds()
    return f" ({what} at {when(now)}, {_span(late_s)} after the scheduled {when(scheduled)}.)"


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{round(seconds / size)} {unit}"
    return f"{round(seconds)} s"


# A window that ended this long ago (a worker down for days, or an upgrade finding windows from
# years back) is caught up on the page and in the history, but nobody is notified of it any more.
STALE_AFTER = timedelta(hours=24)


def _stale(row: Row, now: datetime) -> bool:
    """Whether the whole window is so far in the past that telling subscribers now would only confuse."""
    end = row["scheduled_until"] or row["scheduled_for"]
    return bool(end and end < now - STALE_AFTER)


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

    update = UpdateIn(
        status=MaintenanceStatus.IN_PROGRESS.value,
        message=text,
        components=changes,
        deliver_notifications=not _stale(row, now),
    )
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
    update = UpdateIn(status=COMPLETED, message=text, components=changes, deliver_notifications=not _stale(row, now))
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
    if kind is not Step.RECUR and await _still_going_out(conn, row["id"], now):
        raise StepNotDue("the update before is still going out", {"step": step.step})
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
