"""Imported incidents and maintenances with every update, at their original times, and no outbox.

History is written straight into the incident tables rather than posted: these updates
went out long ago, so nothing here may reach anyone again. Each update is public (it was
on the old page) and carries no outbox row, so no fan-out, delivery or reminder ever
starts from it. A second run rewrites what the source changed and adds what is new.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import incident_components, incidents, new_id, status_changes, updates
from broadcaster.domain.incidents import STATUS_PAGE, derived_impact
from broadcaster.errors import InputError
from broadcaster.importing.mapping import INCIDENT, UPDATE, SourceMap
from broadcaster.importing.model import Bundle, Kind, SourceIncident, SourceUpdate, fingerprint
from broadcaster.importing.progress import Progress
from broadcaster.importing.report import Report
from broadcaster.importing.timeline import Timeline
from broadcaster.models import CLOSED_STATUSES, ComponentStatus, Impact, IncidentKind, humanize
from broadcaster.schemas import check_status

Row = dict[str, Any]
_STATUSES = {s.value for s in ComponentStatus}
_IMPACTS = {i.value for i in Impact}


class _Context:
    """What every incident of one import shares."""

    def __init__(
        self,
        conn: AsyncConnection,
        bundle: Bundle,
        known: SourceMap,
        ids: dict[str, str],
        timeline: Timeline,
        report: Report,
    ) -> None:
        self.conn = conn
        self.source = bundle.source
        self.known = known
        groups = {c.source_id for c in bundle.components if c.is_group}
        self.ids = {source: local for source, local in ids.items() if source not in groups}  # components only
        self.timeline = timeline
        self.report = report


async def write_history(
    conn: AsyncConnection,
    bundle: Bundle,
    known: SourceMap,
    ids: dict[str, str],
    timeline: Timeline,
    report: Report,
    progress: Progress,
) -> None:
    """Write the bundle's incidents and maintenances, oldest first."""
    context = _Context(conn, bundle, known, ids, timeline, report)
    progress.begin("writing incidents", len(bundle.incidents))
    for incident in sorted(bundle.incidents, key=lambda i: (i.created_at, i.source_id)):
        progress.advance()
        await _write_incident(context, incident)
    progress.end()


def _valid_updates(context: _Context, incident: SourceIncident) -> list[SourceUpdate]:
    kept = []
    for update in sorted(incident.updates, key=lambda u: (u.created_at, u.source_id)):
        try:
            check_status(incident.kind, update.status)
        except InputError:
            why = f"status {update.status!r} is not a {incident.kind} status"
            context.report.skipped(Kind.UPDATES, update.source_id, why)
            continue
        kept.append(update)
    return kept


async def _write_incident(context: _Context, incident: SourceIncident) -> None:
    conn, report = context.conn, context.report
    kind = Kind.MAINTENANCES if incident.kind == IncidentKind.MAINTENANCE.value else Kind.INCIDENTS
    try:
        check_status(incident.kind, incident.status)
    except InputError:
        report.skipped(kind, incident.source_id, f"status {incident.status!r} is not a {incident.kind} status")
        return
    kept = _valid_updates(context, incident)
    if not kept:
        report.skipped(kind, incident.source_id, "it has no update to show")
        return
    digest = fingerprint(incident)
    entry = context.known.get(INCIDENT, incident.source_id)
    row = None
    if entry is not None:
        found = (await conn.execute(select(incidents).where(incidents.c.id == entry.local_id))).mappings().first()
        row = dict(found) if found else None
    if row is not None and entry is not None and entry.fingerprint == digest:
        report.unchanged(kind)
        for _ in kept:
            report.unchanged(Kind.UPDATES)
        return
    values = _incident_values(incident, kept)
    existing: dict[str, Row] = {}
    if row is None:
        incident_id = new_id()
        meta = {"import": {"source": context.source, "id": incident.source_id}}
        await conn.execute(incidents.insert().values(id=incident_id, drill=False, meta=meta, **values))
        report.created(kind)
    else:
        incident_id = row["id"]
        await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(**values))
        report.updated(kind)
        result = await conn.execute(select(updates).where(updates.c.incident_id == incident_id))
        existing = {r["id"]: dict(r) for r in result.mappings()}
    number = max((r["number"] for r in existing.values()), default=0)
    touched: set[str] = {context.ids[c] for c in incident.component_ids if c in context.ids}
    for update in kept:
        number, changed = await _write_update(context, incident_id, update, existing, number)
        touched |= changed
    await _link(conn, incident_id, touched)
    context.known.remember(INCIDENT, incident.source_id, incident_id, digest)


async def _write_update(
    context: _Context, incident_id: str, update: SourceUpdate, existing: dict[str, Row], number: int
) -> tuple[int, set[str]]:
    """Write one update (unless unchanged); returns the incident's highest number and the components it names."""
    conn, report = context.conn, context.report
    digest = fingerprint(update)
    entry = context.known.get(UPDATE, update.source_id)
    row = existing.get(entry.local_id) if entry else None
    named = {context.ids[c.component_id] for c in update.changes if c.component_id in context.ids}
    if row is not None and entry is not None and entry.fingerprint == digest:
        report.unchanged(Kind.UPDATES)
        return number, named
    values = {
        "status": update.status,
        "body": update.body.strip() or humanize(update.status),
        "created_at": update.created_at,
        "display_at": update.display_at or update.created_at,
        "deliver_notifications": update.deliver_notifications,
    }
    wanted = [
        (local, change.new_status, update.created_at)
        for change in update.changes
        if (local := context.ids.get(change.component_id))
        and change.new_status in _STATUSES
        and context.timeline.tracks(local)
    ]
    if row is not None:
        update_id = row["id"]
        await conn.execute(updates.update().where(updates.c.id == update_id).values(**values))
        report.updated(Kind.UPDATES)
        had = await conn.execute(
            select(status_changes.c.component_id, status_changes.c.new_status, status_changes.c.created_at)
            .where(status_changes.c.update_id == update_id)
            .order_by(status_changes.c.id)
        )
        if [tuple(r) for r in had] == wanted:
            wanted = []  # the same changes at the same time: the history stays as it is
        else:
            await conn.execute(delete(status_changes).where(status_changes.c.update_id == update_id))
    else:
        update_id, number = new_id(), number + 1
        await conn.execute(
            updates.insert().values(
                id=update_id,
                incident_id=incident_id,
                number=number,
                channels=[STATUS_PAGE],
                public=True,
                next_update_at=None,
                agent={},
                author=None,
                **values,
            )
        )
        report.created(Kind.UPDATES)
    for local, status, at in wanted:
        context.timeline.add(local, at, status, update_id)
    context.known.remember(UPDATE, update.source_id, update_id, digest)
    return number, named


async def _link(conn: AsyncConnection, incident_id: str, component_ids: set[str]) -> None:
    result = await conn.execute(
        select(incident_components.c.component_id).where(incident_components.c.incident_id == incident_id)
    )
    linked = set(result.scalars())
    new = sorted(component_ids - linked)
    if new:
        await conn.execute(incident_components.insert(), [{"incident_id": incident_id, "component_id": c} for c in new])


def _first_at(kept: Sequence[SourceUpdate], statuses: Sequence[str]) -> datetime | None:
    return next((u.created_at for u in kept if u.status in statuses), None)


def _incident_values(incident: SourceIncident, kept: Sequence[SourceUpdate]) -> Row:
    closed = incident.status in CLOSED_STATUSES
    last_at = kept[-1].created_at
    if incident.kind == IncidentKind.MAINTENANCE.value:
        impact = Impact.MAINTENANCE.value
    elif incident.impact in _IMPACTS:
        impact = incident.impact
    else:
        impact = derived_impact([c.new_status for u in kept for c in u.changes if c.new_status in _STATUSES])
    return {
        "kind": incident.kind,
        "name": incident.name[:255] or "(untitled)",
        "status": incident.status,
        "impact": impact,
        "impact_override": incident.impact_override,
        "created_at": incident.created_at,
        "updated_at": max(incident.updated_at, last_at),
        "started_at": incident.started_at or incident.created_at,
        "monitoring_at": incident.monitoring_at or _first_at(kept, ("monitoring",)),
        "resolved_at": (incident.resolved_at or last_at) if closed else None,
        "scheduled_for": incident.scheduled_for,
        "scheduled_until": incident.scheduled_until,
        "next_update_at": None,
        "reminded_at": None,
    }
