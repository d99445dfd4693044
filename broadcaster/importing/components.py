"""Imported groups and components: created, refreshed when the source changed them, adopted by name.

A component already on this page with the same name (and group) that no import brought is
adopted instead of duplicated. The source orders siblings; here one ``position`` orders the
page, so the source's tree is flattened (each group followed by its components), after the
components this page had of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import components, new_id, utcnow
from broadcaster.importing.mapping import COMPONENT, SourceMap
from broadcaster.importing.model import Bundle, Kind, SourceComponent, fingerprint
from broadcaster.importing.progress import Progress
from broadcaster.importing.report import Report
from broadcaster.importing.timeline import Timeline
from broadcaster.models import ComponentStatus

Row = dict[str, Any]
_STATUSES = {s.value for s in ComponentStatus}


def page_order(items: Sequence[SourceComponent]) -> list[SourceComponent]:
    """Groups and ungrouped components by their position, each group followed by its own components."""
    ids = {c.source_id for c in items}
    groups = {c.source_id for c in items if c.is_group}
    top = [c for c in items if c.is_group or c.group_id not in groups]
    children: dict[str, list[SourceComponent]] = {}
    for c in items:
        if not c.is_group and c.group_id in groups:
            children.setdefault(str(c.group_id), []).append(c)
    ordered: list[SourceComponent] = []
    for item in sorted(top, key=lambda c: (c.position, c.name)):
        ordered.append(item)
        ordered.extend(sorted(children.get(item.source_id, []), key=lambda c: (c.position, c.name)))
    assert {c.source_id for c in ordered} == ids
    return ordered


async def _base_position(conn: AsyncConnection, mapped: set[str]) -> int:
    query = select(func.max(components.c.position))
    if mapped:
        query = query.where(components.c.id.not_in(list(mapped)))
    return int((await conn.execute(query)).scalar() or 0)


def _values(item: SourceComponent, group_id: str | None, position: int) -> Row:
    return {
        "name": item.name[:255],
        "description": item.description,
        "group_id": group_id,
        "is_group": item.is_group,
        "position": position,
        "showcase": item.showcase,
        "only_show_if_degraded": item.only_show_if_degraded,
    }


async def write_components(
    conn: AsyncConnection, bundle: Bundle, known: SourceMap, timeline: Timeline, report: Report, progress: Progress
) -> dict[str, str]:
    """Write the bundle's groups and components; returns {source id: local id} for every one written or kept."""
    local = {r["id"]: dict(r) for r in (await conn.execute(select(components))).mappings()}
    mapped = {k for k in known.local_ids(COMPONENT) if k in local}
    base = await _base_position(conn, mapped)
    ids: dict[str, str] = {}
    progress.begin("writing components", len(bundle.components))
    for offset, item in enumerate(page_order(bundle.components), start=1):
        kind = Kind.GROUPS if item.is_group else Kind.COMPONENTS
        progress.advance()
        if not item.is_group and item.status not in _STATUSES:
            report.skipped(kind, item.source_id, f"unknown status {item.status!r}")
            continue
        group_id = ids.get(item.group_id) if item.group_id and not item.is_group else None
        values = _values(item, group_id, base + offset)
        digest = fingerprint(item)
        entry = known.get(COMPONENT, item.source_id)
        row = local.get(entry.local_id) if entry else None
        if row is None:
            row = _adoptable(local.values(), values, mapped)
        if row is None:
            row = await _insert(conn, item, values)
            local[row["id"]] = row
            report.created(kind)
            if not item.is_group:
                timeline.start(row["id"], None, item.created_at)
                timeline.settle(row["id"], item.status, item.updated_at)
        elif entry is not None and entry.local_id == row["id"] and entry.fingerprint == digest:
            report.unchanged(kind)
            if not item.is_group:
                timeline.start(row["id"], row["status"])
        else:
            await conn.execute(components.update().where(components.c.id == row["id"]).values(**values))
            report.updated(kind)
            if not item.is_group:
                timeline.start(row["id"], row["status"])
                timeline.settle(row["id"], item.status, item.updated_at)
        mapped.add(row["id"])
        ids[item.source_id] = row["id"]
        known.remember(COMPONENT, item.source_id, row["id"], digest)
    progress.end()
    return ids


def _adoptable(rows: Any, values: Row, taken: set[str]) -> Row | None:
    """A component of this page's own with the same name, kind and group: taken over, not duplicated."""
    for row in rows:
        same = (row["name"], bool(row["is_group"]), row["group_id"]) == (
            values["name"],
            values["is_group"],
            values["group_id"],
        )
        if same and row["id"] not in taken:
            return dict(row)
    return None


async def _insert(conn: AsyncConnection, item: SourceComponent, values: Row) -> Row:
    now = utcnow()
    created = item.created_at or now
    row = {
        **values,
        "id": new_id(),
        "status": ComponentStatus.OPERATIONAL.value if item.is_group else item.status,
        "start_date": created.date().isoformat(),
        "created_at": created,
        "updated_at": item.updated_at or now,
    }
    await conn.execute(components.insert().values(**row))
    return row
