"""What people answered to an incident's social posts (fetched by ``broadcaster.jobs.listening``).

One row per reply and channel (unique on the provider's id, so fetching a thread again adds only what
is new). Read newest first, with counts per channel, for the console and the desk ("what people are
saying"), and as volume over time for the post-incident report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import incident_replies, utcnow
from broadcaster.delivery.channel import Reply
from broadcaster.delivery.ledger import insert_ignoring_conflicts

Row = dict[str, Any]
SHOWN = 20  # newest replies shown per incident
# Report buckets: the smallest that keeps the incident in at most MAX_BUCKETS of them.
BUCKETS_S = (60, 5 * 60, 15 * 60, 3600, 6 * 3600, 24 * 3600)
MAX_BUCKETS = 48


@dataclass(frozen=True)
class Listened:
    """An incident's replies: the newest ``SHOWN``, the total and the count per channel."""

    latest: list[Row] = field(default_factory=list)
    total: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


async def save(conn: AsyncConnection, incident_id: str, channel: str, replies: Sequence[Reply]) -> int:
    """Store the replies not stored yet; returns how many were new."""
    if not replies:
        return 0
    now = utcnow()
    rows = [
        {
            "incident_id": incident_id,
            "channel": channel,
            "provider_id": r.provider_id[:512],
            "kind": r.kind.value,
            "author": r.author[:255],
            "text": r.text,
            "url": r.url[:2048] if r.url else None,
            "posted_at": r.posted_at,
            "fetched_at": now,
        }
        for r in {r.provider_id: r for r in replies}.values()
    ]
    result = await conn.execute(insert_ignoring_conflicts(conn, incident_replies).values(rows).on_conflict_do_nothing())
    return max(0, int(result.rowcount or 0))


async def listened(conn: AsyncConnection, incident_ids: Sequence[str], shown: int = SHOWN) -> dict[str, Listened]:
    """For each incident that has replies: the newest ``shown`` of them and the counts."""
    if not incident_ids:
        return {}
    ids = list(incident_ids)
    counts: dict[str, dict[str, int]] = {}
    for incident_id, channel, count in (
        await conn.execute(
            select(incident_replies.c.incident_id, incident_replies.c.channel, func.count())
            .where(incident_replies.c.incident_id.in_(ids))
            .group_by(incident_replies.c.incident_id, incident_replies.c.channel)
        )
    ).all():
        counts.setdefault(str(incident_id), {})[str(channel)] = int(count)
    out: dict[str, Listened] = {}
    for incident_id, by_channel in counts.items():
        latest = await conn.execute(
            select(incident_replies)
            .where(incident_replies.c.incident_id == incident_id)
            .order_by(incident_replies.c.posted_at.desc(), incident_replies.c.id.desc())
            .limit(shown)
        )
        out[incident_id] = Listened(
            [dict(r) for r in latest.mappings()], sum(by_channel.values()), dict(sorted(by_channel.items()))
        )
    return out


def bucket_size_s(start: datetime, end: datetime) -> int:
    """The report's bucket: the smallest of ``BUCKETS_S`` that covers ``start``..``end`` in ``MAX_BUCKETS``."""
    span = max(1.0, (end - start).total_seconds())
    return next((size for size in BUCKETS_S if span / size <= MAX_BUCKETS), BUCKETS_S[-1])


def volume(posted: Sequence[datetime], start: datetime, end: datetime) -> tuple[int, list[tuple[datetime, int]]]:
    """Replies per bucket from ``start`` (the first update) to ``end``: (bucket seconds, [(bucket start, count)])."""
    size = bucket_size_s(start, end)
    buckets: dict[int, int] = {}
    for when in posted:
        index = max(0, int((when - start).total_seconds() // size))
        buckets[index] = buckets.get(index, 0) + 1
    last = max([int(max(0.0, (end - start).total_seconds()) // size), *buckets], default=0)
    return size, [(start + timedelta(seconds=i * size), buckets.get(i, 0)) for i in range(last + 1)]


async def posted_times(conn: AsyncConnection, incident_id: str) -> list[datetime]:
    result = await conn.execute(
        select(incident_replies.c.posted_at)
        .where(incident_replies.c.incident_id == incident_id)
        .order_by(incident_replies.c.posted_at)
    )
    return [r[0] for r in result.all()]
