"""90-day uptime per component, computed from the recorded status history (``status_changes``).

Like Statuspage, a major outage counts as full downtime and a partial outage as
``PARTIAL_OUTAGE_WEIGHT`` of it; degraded performance and maintenance count as up. Days are
UTC days; a day before the component existed has no data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import status_changes
from broadcaster.models import COMPONENT_SEVERITY, ComponentStatus

WINDOW_DAYS = 90
PARTIAL_OUTAGE_WEIGHT = 0.3
DOWNTIME_WEIGHT = {ComponentStatus.MAJOR_OUTAGE.value: 1.0, ComponentStatus.PARTIAL_OUTAGE.value: PARTIAL_OUTAGE_WEIGHT}


@dataclass(frozen=True, slots=True)
class Day:
    """One day of one component: its uptime fraction (None: no data) and its worst status."""

    day: date
    uptime: float | None
    worst: str | None

    @property
    def level(self) -> int:
        """0 (fine) .. 4 (major outage), or -1 for no data; used as a CSS class."""
        if self.worst is None:
            return -1
        return _severity(self.worst)


@dataclass(frozen=True, slots=True)
class Uptime:
    days: tuple[Day, ...]
    percent: float | None  # over the days with data


Change = tuple[datetime, str]


_KNOWN = {s.value for s in ComponentStatus}


def _severity(status: str) -> int:
    return COMPONENT_SEVERITY[ComponentStatus(status)] if status in _KNOWN else 0


def daily_uptime(changes: Sequence[Change], before: str | None, now: datetime, days: int = WINDOW_DAYS) -> Uptime:
    """Uptime per UTC day over the ``days`` ending today.

    ``changes`` are (time, new status) inside the window, oldest first; ``before`` is the
    status in force when the window opened (None when the component did not exist yet).
    """
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=days - 1)
    window_start = datetime.combine(first_day, time(), UTC)
    points: list[Change] = [(window_start, before)] if before else []
    points.extend((max(at, window_start), status) for at, status in changes if at <= now)
    segments = [(at, points[i + 1][0] if i + 1 < len(points) else now, status) for i, (at, status) in enumerate(points)]
    out: list[Day] = []
    total_up = total = 0.0
    for index in range(days):
        day = first_day + timedelta(days=index)
        start = datetime.combine(day, time(), UTC)
        end = min(start + timedelta(days=1), now)
        covered = down = 0.0
        worst: str | None = None
        for seg_start, seg_end, status in segments:
            span = (min(seg_end, end) - max(seg_start, start)).total_seconds()
            if span <= 0:
                continue
            if worst is None or _severity(status) > _severity(worst):
                worst = status
            covered += span
            down += span * DOWNTIME_WEIGHT.get(status, 0.0)
        if covered > 0:
            total += covered
            total_up += covered - down
        out.append(Day(day, 1.0 - down / covered if covered > 0 else None, worst))
    return Uptime(tuple(out), 100.0 * total_up / total if total else None)


async def uptime_by_component(
    conn: AsyncConnection, component_ids: Iterable[str], now: datetime, days: int = WINDOW_DAYS
) -> dict[str, Uptime]:
    """``daily_uptime`` for each component, from two queries."""
    ids = list(component_ids)
    if not ids:
        return {}
    window_start = datetime.combine(now.astimezone(UTC).date() - timedelta(days=days - 1), time(), UTC)
    last_before = (
        select(func.max(status_changes.c.id))
        .where(status_changes.c.component_id.in_(ids), status_changes.c.created_at < window_start)
        .group_by(status_changes.c.component_id)
    )
    before: dict[str, str] = {
        str(row.component_id): str(row.new_status)
        for row in await conn.execute(
            select(status_changes.c.component_id, status_changes.c.new_status).where(
                status_changes.c.id.in_(last_before)
            )
        )
    }
    inside: dict[str, list[Change]] = {cid: [] for cid in ids}
    result = await conn.execute(
        select(status_changes.c.component_id, status_changes.c.created_at, status_changes.c.new_status)
        .where(status_changes.c.component_id.in_(ids), status_changes.c.created_at >= window_start)
        .order_by(status_changes.c.created_at, status_changes.c.id)
    )
    for row in result:
        inside[str(row.component_id)].append((row.created_at, str(row.new_status)))
    return {cid: daily_uptime(inside[cid], before.get(cid), now, days) for cid in ids}
