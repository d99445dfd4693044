"""Component status history written by an import, in time order.

Uptime (``broadcaster.views.uptime``) reads the status in force at a moment as the newest
row before it, by row id, so the rows an import adds are inserted sorted by time. A new
component starts ``operational`` when it was created (or before its first change); the
source's present status closes the history when the replay ends elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import components, status_changes, utcnow
from broadcaster.models import ComponentStatus


@dataclass
class _Component:
    before: str | None  # its status before the import: None for a component the import creates
    created_at: datetime | None = None
    settle: tuple[str, datetime] | None = None  # the source's present status, and since when
    entries: list[tuple[datetime, int, str | None, str]] = field(default_factory=list)  # at, seq, update, status


class Timeline:
    """Changes collected during an import (``add``), written by ``flush`` in one sorted batch."""

    def __init__(self) -> None:
        self._components: dict[str, _Component] = {}
        self._seq = 0

    def start(self, component_id: str, before: str | None, created_at: datetime | None = None) -> None:
        """Track a component: ``before`` is its present local status (None when the import creates it)."""
        self._components.setdefault(component_id, _Component(before, created_at))

    def tracks(self, component_id: str) -> bool:
        return component_id in self._components

    def add(self, component_id: str, at: datetime, new_status: str, update_id: str | None = None) -> None:
        self._seq += 1
        self._components[component_id].entries.append((at, self._seq, update_id, new_status))

    def settle(self, component_id: str, status: str, at: datetime | None) -> None:
        """The status the source shows now: the history ends there (a change is added if the replay does not)."""
        self._components[component_id].settle = (status, at or utcnow())

    async def _latest(self, conn: AsyncConnection, component_id: str) -> tuple[datetime, str] | None:
        """The newest change this page already has for a component (by time): what it shows now."""
        row = (
            await conn.execute(
                select(status_changes.c.created_at, status_changes.c.new_status)
                .where(status_changes.c.component_id == component_id)
                .order_by(status_changes.c.created_at.desc(), status_changes.c.id.desc())
                .limit(1)
            )
        ).first()
        return (row.created_at, str(row.new_status)) if row else None

    async def flush(self, conn: AsyncConnection) -> None:
        ordered: list[tuple[tuple[datetime, int], dict[str, object]]] = []
        finals: dict[str, str] = {}
        for component_id, item in self._components.items():
            if not item.entries and item.settle is None:
                continue
            entries = sorted(item.entries)
            known = None if item.before is None else await self._latest(conn, component_id)
            if item.before is None:
                first = min([item.created_at or utcnow(), *(at for at, *_ in entries[:1])])
                entries.insert(0, (first, 0, None, ComponentStatus.OPERATIONAL.value))
            # what the page shows once these are in: the newest change, old or new
            newest = max([*((e[0], e[3]) for e in entries[-1:]), *([known] if known else [])], default=None)
            if item.settle is not None and (newest is None or item.settle[0] != newest[1]):
                at = max([item.settle[1], *([newest[0]] if newest else [])])
                self._seq += 1
                entries.append((at, self._seq, None, item.settle[0]))
                newest = (at, item.settle[0])
            previous = item.before
            for at, seq, update_id, status in entries:
                row: dict[str, object] = {
                    "component_id": component_id,
                    "update_id": update_id,
                    "old_status": previous,
                    "new_status": status,
                    "created_at": at,
                }
                ordered.append(((at, seq), row))
                previous = status
            if newest is not None and newest[1] != item.before:
                finals[component_id] = newest[1]
        ordered.sort(key=lambda pair: pair[0])
        rows = [row for _, row in ordered]
        if rows:
            await conn.execute(status_changes.insert(), rows)
        if finals:
            await conn.execute(
                components.update()
                .where(components.c.id == bindparam("b_id"))
                .values(status=bindparam("b_status"), updated_at=utcnow()),
                [{"b_id": cid, "b_status": status} for cid, status in finals.items()],
            )
        self._components.clear()
