"""Editing a maintenance (``PATCH /api/v1/incidents/{id}``): a new window or new components tell people.

A change of the window or of the components bumps the calendar's SEQUENCE and is posted as
an update ("Rescheduled to …") to every enabled channel, like any update; a change of how the
maintenance runs itself (``auto_transition``, the automatic messages, ``rrule``,
``remind_before_minutes``) is recorded quietly. Both go through ``broadcaster.posting`` as a
``MaintenanceEdit``: the edit, its update and its audit row commit together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.config import Settings
from broadcaster.db import incident_components, incidents, utcnow
from broadcaster.domain import recurrence
from broadcaster.domain.components import components_by_id, display_name, require_components
from broadcaster.domain.incidents import parse_time
from broadcaster.domain.maintenance import (
    ACTIVE,
    MAINTENANCE,
    SCHEDULED,
    StepPlan,
    current_statuses,
    lead_minutes,
    locked_row,
    plan_rows,
    remind_at,
    set_plan,
    when,
)
from broadcaster.domain.maintenance_steps import restored
from broadcaster.errors import Conflict, InputError
from broadcaster.models import CLOSED_STATUSES, ComponentStatus
from broadcaster.post_requests import FollowUp, MaintenanceEdit
from broadcaster.schemas import MaintenancePatch, UpdateIn

QUIET_FIELDS = ("auto_transition", "auto_start_message", "auto_complete_message", "remind_before_minutes")


def _window(start: datetime | None, until: datetime | None) -> str:
    if start is None:
        return "an open time"
    return f"{when(start)} to {when(until)}" if until else when(start)


def _times(row: dict[str, Any], given: set[str], data: MaintenancePatch) -> tuple[datetime, datetime | None]:
    start = parse_time(data.scheduled_for, "scheduled_for") if "scheduled_for" in given else row["scheduled_for"]
    until = (
        parse_time(data.scheduled_until, "scheduled_until") if "scheduled_until" in given else row["scheduled_until"]
    )
    if start is None:
        raise InputError("a maintenance needs its window", {"scheduled_for": "required for a maintenance"})
    if start != row["scheduled_for"] and row["status"] != SCHEDULED:
        raise InputError(
            "the window has begun", {"scheduled_for": "the maintenance has started; change scheduled_until"}
        )
    if until is not None and until <= start:
        raise InputError("empty window", {"scheduled_until": "must be after scheduled_for"})
    return start, until


async def _component_changes(
    conn: AsyncConnection, row: dict[str, Any], targets: dict[str, str]
) -> tuple[dict[str, ComponentStatus], dict[str, str]]:
    """(what the edit's update states per component, the statuses kept for a window under way)."""
    await require_components(conn, targets, field="components")
    plan = await plan_rows(conn, row["id"])
    current = await current_statuses(conn, list({*plan, *targets}))
    if row["status"] not in ACTIVE:  # not started: named at their current status, changed at the start
        return {cid: ComponentStatus(current[cid]) for cid in targets}, {}
    dropped = {cid: p for cid, p in plan.items() if cid not in targets}
    changes = await restored(conn, row["id"], dropped) if dropped else {}
    changes = {cid: s for cid, s in changes.items() if cid in dropped}
    before = {cid: str(plan[cid]["status_before"] or current[cid]) if cid in plan else current[cid] for cid in targets}
    changes.update({cid: ComponentStatus(status) for cid, status in targets.items()})
    return changes, before


async def plan_edit(conn: AsyncConnection, edit: MaintenanceEdit, settings: Settings) -> StepPlan:
    """Apply the edit in the posting transaction; the update telling of it, when the window or components moved."""
    row = await locked_row(conn, edit.incident_id)
    if row["kind"] != MAINTENANCE:
        raise InputError("not a maintenance", {"incident_id": "is an incident: only a maintenance has a window"})
    if row["status"] in CLOSED_STATUSES:
        raise Conflict("the maintenance is over", {"status": f"{row['status']}: schedule a new maintenance instead"})
    data, given = edit.data, set(edit.data.model_fields_set)
    now = utcnow()
    start, until = _times(row, given, data)
    values: dict[str, Any] = {name: getattr(data, name) for name in QUIET_FIELDS if name in given}
    for name in ("auto_start_message", "auto_complete_message"):
        if name in values:
            values[name] = values[name] or None
    moved = start != row["scheduled_for"] or until != row["scheduled_until"]
    rule = data.rrule if "rrule" in given else row["rrule"]
    if rule and ("rrule" in given or moved):
        values.update(
            rrule=recurrence.check(rule, start, until, recurrence.page_zone(settings.time_zone)),
            recurrence_start=start,
        )
    elif "rrule" in given:
        values.update(rrule=None, recurrence_start=None)
    if row["status"] == SCHEDULED and (moved or "remind_before_minutes" in given):
        minutes = lead_minutes(values.get("remind_before_minutes", row["remind_before_minutes"]), settings)
        values["remind_at"] = remind_at(start, minutes, now)
    plan = await plan_rows(conn, row["id"])
    changes: dict[str, ComponentStatus] = {}
    regrouped = False
    if data.components is not None:
        targets = {cid: status.value for cid, status in data.components.items()}
        regrouped = targets != {cid: p["status"] for cid, p in plan.items()}
        if regrouped:
            changes, before = await _component_changes(conn, row, targets)
            await set_plan(conn, row["id"], targets, before)
            dropped = [cid for cid in plan if cid not in targets]
            if dropped:
                await conn.execute(
                    incident_components.delete().where(
                        incident_components.c.incident_id == row["id"], incident_components.c.component_id.in_(dropped)
                    )
                )
    if moved or regrouped:
        values.update(scheduled_for=start, scheduled_until=until, sequence=int(row["sequence"] or 0) + 1)
    if values:
        await conn.execute(incidents.update().where(incidents.c.id == row["id"]).values(**values))
    details = {"fields": sorted(given - {"message"}), "notified": moved or regrouped}
    if not (moved or regrouped):
        return StepPlan(None, details=details)
    text = data.message or await _notice(
        conn, row, start, until, moved, list(data.components or {}) if regrouped else None
    )
    update = UpdateIn(status=row["status"], message=text, components=changes)
    return StepPlan(FollowUp(row["id"], update), details=details)


async def _notice(
    conn: AsyncConnection,
    row: dict[str, Any],
    start: datetime,
    until: datetime | None,
    moved: bool,
    components: list[str] | None,
) -> str:
    parts = []
    if moved:
        was = _window(row["scheduled_for"], row["scheduled_until"])
        if start == row["scheduled_for"]:
            parts.append(
                f"This maintenance now ends {f'at {when(until)}' if until else 'when it is done'} (was {was})."
            )
        else:
            parts.append(f"This maintenance is rescheduled to {_window(start, until)} (was {was}).")
    if components is not None:
        found = await components_by_id(conn, components)
        groups = await components_by_id(conn, [r["group_id"] for r in found.values() if r["group_id"]])
        names = sorted(display_name(r, groups) for r in found.values())
        parts.append(f"Components affected: {', '.join(names)}." if names else "No component is affected any more.")
    return " ".join(parts)
