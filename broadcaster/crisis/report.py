"""Post-incident report: timeline, time to first public update, cadence against promises, reach;
for an incident an alert opened, the time from that alert to the first public update; and the replies
people posted to its social posts, in all and over time.

``compute`` is pure (rows in, figures out) so it can be checked against known timestamps;
``load_report`` gathers the rows for one incident; ``to_markdown`` renders the download.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import alert_groups, deliveries, incident_components, status_changes, updates
from broadcaster.domain import replies
from broadcaster.domain.incidents import get_incident_row
from broadcaster.models import DeliveryState, humanize
from broadcaster.render import environment

Row = Mapping[str, Any]


@dataclass(frozen=True)
class TimelineEntry:
    number: int
    status: str
    created_at: datetime
    next_update_at: datetime | None
    author: str | None
    body: str


@dataclass(frozen=True)
class Interval:
    """The gap between update ``from_number`` and the next one, against what it promised."""

    from_number: int
    to_number: int
    elapsed_s: float
    promised_s: float | None  # None when the earlier update promised no time
    late_by_s: float  # 0 when on time or no promise

    @property
    def kept(self) -> bool | None:
        return None if self.promised_s is None else self.late_by_s == 0


@dataclass(frozen=True)
class ChannelReach:
    channel: str
    sent: int = 0
    failed: int = 0
    pending: int = 0
    total: int = 0
    failure_reasons: tuple[tuple[str, int], ...] = ()  # (reason, count), most frequent first


@dataclass(frozen=True)
class Report:
    incident_id: str
    title: str
    kind: str
    impact: str
    status: str
    started_at: datetime
    first_down_at: datetime | None  # earliest component outage recorded before the first update
    clock_start: datetime  # what "time to first update" counts from
    resolved_at: datetime | None
    time_to_first_update_s: float | None
    duration_s: float | None
    timeline: tuple[TimelineEntry, ...]
    intervals: tuple[Interval, ...]
    reach: tuple[ChannelReach, ...] = field(default_factory=tuple)
    alert_at: datetime | None = None  # the first alert of the alert group that proposed it (broadcaster.alerts)
    alert_to_first_update_s: float | None = None  # from that alert to the first public update
    replies_total: int = 0
    replies_by_channel: tuple[tuple[str, int], ...] = ()
    reply_bucket_s: int = 0  # the width of each ``reply_volume`` bucket
    reply_volume: tuple[tuple[datetime, int], ...] = ()  # (bucket start, replies posted in it)

    @property
    def promises_kept(self) -> int:
        return sum(1 for i in self.intervals if i.kept is True)

    @property
    def promises_broken(self) -> int:
        return sum(1 for i in self.intervals if i.kept is False)

    @property
    def longest_silence_s(self) -> float | None:
        return max((i.elapsed_s for i in self.intervals), default=None)


def outage_start(changes: Sequence[Row], first_update_at: datetime) -> datetime | None:
    """When the first affected component went down, from its status history.

    ``changes`` are (component_id, old_status, new_status, created_at) rows of the incident's
    components. For each component the last move from operational to anything else at or
    before the first update counts; the earliest of those is the outage start.
    """
    down_at: dict[str, datetime] = {}
    for change in sorted(changes, key=lambda c: c["created_at"]):
        if change["created_at"] > first_update_at:
            break
        component = change["component_id"]
        if change["new_status"] == "operational":
            down_at.pop(component, None)
        elif change["old_status"] in (None, "operational") and component not in down_at:
            down_at[component] = change["created_at"]
    return min(down_at.values(), default=None)


def compute(
    incident: Row,
    update_rows: Sequence[Row],
    changes: Sequence[Row] = (),
    reach: Mapping[str, Mapping[str, int]] | None = None,
    failure_reasons: Mapping[str, Mapping[str, int]] | None = None,
    *,
    alert_at: datetime | None = None,
    reply_times: Sequence[datetime] = (),
    replies_by_channel: Mapping[str, int] | None = None,
) -> Report:
    """The report's figures from stored rows (any order of ``update_rows``); ``alert_at`` is the first alert's
    time, ``reply_times`` when each reply was posted."""
    ordered = sorted(update_rows, key=lambda u: u["number"])
    timeline = tuple(
        TimelineEntry(u["number"], u["status"], u["created_at"], u.get("next_update_at"), u.get("author"), u["body"])
        for u in ordered
    )
    started_at: datetime = incident["started_at"]
    first_down = outage_start(changes, timeline[0].created_at) if timeline else None
    clock_start = min(started_at, first_down) if first_down else started_at
    first_update_s = (timeline[0].created_at - clock_start).total_seconds() if timeline else None
    intervals = []
    for earlier, later in itertools.pairwise(timeline):
        elapsed = (later.created_at - earlier.created_at).total_seconds()
        promised = late = None
        if earlier.next_update_at is not None:
            promised = (earlier.next_update_at - earlier.created_at).total_seconds()
            late = max(0.0, (later.created_at - earlier.next_update_at).total_seconds())
        intervals.append(Interval(earlier.number, later.number, elapsed, promised, late or 0.0))
    resolved_at = incident.get("resolved_at")
    reasons = failure_reasons or {}
    first_public = next((u for u in ordered if u.get("public", True)), None)
    bucket_s: int = 0
    volume: list[tuple[datetime, int]] = []
    if timeline and reply_times:
        end = max([*reply_times, timeline[-1].created_at, *([resolved_at] if resolved_at else [])])
        bucket_s, volume = replies.volume(reply_times, timeline[0].created_at, end)
    channel_reach = tuple(
        ChannelReach(
            channel=name,
            sent=int(c.get("sent", 0)),
            failed=int(c.get("failed", 0)),
            pending=int(c.get("pending", 0)),
            total=int(c.get("total", 0)),
            failure_reasons=tuple(sorted(reasons.get(name, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for name, c in sorted((reach or {}).items())
    )
    return Report(
        incident_id=incident["id"],
        title=incident["name"],
        kind=incident["kind"],
        impact=incident["impact"],
        status=incident["status"],
        started_at=started_at,
        first_down_at=first_down,
        clock_start=clock_start,
        resolved_at=resolved_at,
        time_to_first_update_s=first_update_s,
        duration_s=(resolved_at - clock_start).total_seconds() if resolved_at else None,
        timeline=timeline,
        intervals=tuple(intervals),
        reach=channel_reach,
        alert_at=alert_at,
        alert_to_first_update_s=(first_public["created_at"] - alert_at).total_seconds()
        if alert_at and first_public
        else None,
        replies_total=len(reply_times),
        replies_by_channel=tuple(sorted((replies_by_channel or {}).items())),
        reply_bucket_s=bucket_s,
        reply_volume=tuple(volume),
    )


def duration(seconds: float | None) -> str:
    """``3725`` -> ``1 h 2 min 5 s``; ``None`` -> ``-``."""
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


async def load_report(conn: AsyncConnection, incident_id: str) -> Report:
    """Gather the incident's updates, component history and ledger figures, then ``compute``."""
    incident = await get_incident_row(conn, incident_id)
    update_rows = [
        dict(r)
        for r in (
            await conn.execute(select(updates).where(updates.c.incident_id == incident_id).order_by(updates.c.number))
        ).mappings()
    ]
    component_ids = select(incident_components.c.component_id).where(incident_components.c.incident_id == incident_id)
    changes = [
        dict(r)
        for r in (
            await conn.execute(
                select(
                    status_changes.c.component_id,
                    status_changes.c.old_status,
                    status_changes.c.new_status,
                    status_changes.c.created_at,
                )
                .where(status_changes.c.component_id.in_(component_ids))
                .order_by(status_changes.c.id)
            )
        ).mappings()
    ]
    update_ids = select(updates.c.id).where(updates.c.incident_id == incident_id)
    reach: dict[str, dict[str, int]] = {}
    reasons: dict[str, dict[str, int]] = {}
    state_counts = await conn.execute(
        select(deliveries.c.channel, deliveries.c.state, func.count())
        .where(deliveries.c.update_id.in_(update_ids))
        .group_by(deliveries.c.channel, deliveries.c.state)
    )
    for channel, state, count in state_counts.all():
        entry = reach.setdefault(channel, {"sent": 0, "failed": 0, "pending": 0, "total": 0})
        key = state if state in ("sent", "failed") else "pending"
        entry[key] += int(count)
        entry["total"] += int(count)
    failed = await conn.execute(
        select(deliveries.c.channel, deliveries.c.last_error, func.count())
        .where(deliveries.c.update_id.in_(update_ids), deliveries.c.state == DeliveryState.FAILED.value)
        .group_by(deliveries.c.channel, deliveries.c.last_error)
    )
    for channel, error, count in failed.all():
        reasons.setdefault(channel, {})[str(error or "unknown")] = int(count)
    alert_at = (
        await conn.execute(
            select(func.min(alert_groups.c.first_alert_at)).where(alert_groups.c.incident_id == incident_id)
        )
    ).scalar()
    listened = (await replies.listened(conn, [incident_id], shown=0)).get(incident_id)
    return compute(
        incident,
        update_rows,
        changes,
        reach,
        reasons,
        alert_at=alert_at,
        reply_times=await replies.posted_times(conn, incident_id),
        replies_by_channel=listened.by_channel if listened else None,
    )


def to_markdown(report: Report) -> str:
    """The downloadable report (``templates/console/report.md``)."""
    template = environment().get_template("console/report.md")
    return template.render(report=report, duration=duration, humanize=humanize) + "\n"
