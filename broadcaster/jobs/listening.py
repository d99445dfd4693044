"""Listening: what people answer to our social posts, fetched on a polite schedule.

A worker cron wakes every ``listening_interval_s`` (at most once a minute when that is longer) and,
for each enabled channel that is ``Listening`` (Mastodon, Bluesky; X's API tier decides, and this
version does not read X), claims the channel's turn in ``listening_polls`` with a guarded UPDATE (one
worker per turn, however many run). In its turn it asks the channel for the replies of each incident
posted there (open, or closed less than ``listening_window_hours`` ago; at most ``MAX_THREADS`` per
turn, the most recently changed first), one request after the other, and stores the new ones
(``broadcaster.domain.replies``). When the provider says to slow down (``RateLimited``) the turn ends
there and the next waits at least as long as it asked. A ``replies`` event tells the console and the
desk. Quiet by default: the turns at DEBUG, a failure at WARNING.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from arq import cron
from arq.cron import CronJob
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.config import Settings
from broadcaster.db import channel_threads, incidents, listening_polls, utcnow
from broadcaster.delivery.channel import Listening
from broadcaster.delivery.ledger import insert_ignoring_conflicts
from broadcaster.domain import replies
from broadcaster.errors import DeliveryError, RateLimited
from broadcaster.models import CLOSED_STATUSES
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)

MAX_THREADS = 25
EVENT = "replies"


def listening_channels(rt: Runtime) -> dict[str, Listening]:
    return {name: ch for name, ch in rt.registry.enabled.items() if isinstance(ch, Listening)}


async def _claim(rt: Runtime, channel: str, now: datetime) -> bool:
    """This worker's turn for ``channel`` when it is due; False when it is not, or another worker took it."""
    interval = timedelta(seconds=max(1, rt.settings.listening_interval_s))
    async with rt.engine.begin() as conn:
        await conn.execute(
            insert_ignoring_conflicts(conn, listening_polls)
            .values(channel=channel, next_poll_at=now)
            .on_conflict_do_nothing()
        )
        taken = await conn.execute(
            listening_polls.update()
            .where(listening_polls.c.channel == channel, listening_polls.c.next_poll_at <= now)
            .values(next_poll_at=now + interval)
        )
    return bool(taken.rowcount)


async def _threads(conn: AsyncConnection, channel: str, since: datetime) -> list[tuple[str, dict[str, Any]]]:
    result = await conn.execute(
        select(channel_threads.c.incident_id, channel_threads.c.data)
        .join(incidents, incidents.c.id == channel_threads.c.incident_id)
        .where(
            channel_threads.c.channel == channel,
            incidents.c.drill.is_(False),
            or_(incidents.c.status.not_in(CLOSED_STATUSES), incidents.c.resolved_at >= since),
        )
        .order_by(incidents.c.updated_at.desc())
        .limit(MAX_THREADS)
    )
    return [(str(r.incident_id), dict(r.data or {})) for r in result]


async def listen_channel(rt: Runtime, name: str, channel: Listening, now: datetime) -> int:
    """One turn of one channel; returns the new replies stored."""
    async with rt.engine.connect() as conn:
        threads = await _threads(conn, name, now - timedelta(hours=rt.settings.listening_window_hours))
        before = (await conn.execute(select(listening_polls.c.error).where(listening_polls.c.channel == name))).scalar()
    new, error, wait_s = 0, None, float(max(1, rt.settings.listening_interval_s))
    for incident_id, thread in threads:
        try:
            found = await channel.replies(thread)
        except RateLimited as exc:
            error, wait_s = exc.reason, max(wait_s, exc.retry_after_s or wait_s)
            break
        except DeliveryError as exc:
            error = exc.reason
            # once per new reason, not every turn: the console shows the last one
            log.log(
                logging.DEBUG if exc.reason == before else logging.WARNING,
                "listening on %s failed: %s",
                name,
                exc.reason,
            )
            continue
        async with rt.engine.begin() as conn:
            added = await replies.save(conn, incident_id, name, found)
        if added:
            new += added
            await rt.bus.publish(EVENT, {"incident_id": incident_id, "channel": name, "new": added})
    async with rt.engine.begin() as conn:
        await conn.execute(
            listening_polls.update()
            .where(listening_polls.c.channel == name)
            .values(polled_at=now, error=error, next_poll_at=now + timedelta(seconds=wait_s))
        )
    log.debug("listened on %s: %d threads, %d new replies%s", name, len(threads), new, f" ({error})" if error else "")
    return new


async def listen(rt: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Every listening channel whose turn it is: {channel: new replies}."""
    now = now or utcnow()
    done = {}
    for name, channel in listening_channels(rt).items():
        if await _claim(rt, name, now):
            done[name] = await listen_channel(rt, name, channel, now)
    return done


async def polls(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    """Each channel's listening state (last turn, next turn, last error), for the console."""
    return {str(r["channel"]): dict(r) for r in (await conn.execute(select(listening_polls))).mappings()}


async def listening_job(ctx: dict[str, Any]) -> dict[str, int]:
    """arq cron entry."""
    runtime: Runtime = ctx["runtime"]
    return await listen(runtime)


def cron_job(settings: Settings) -> CronJob:
    """Every ``listening_interval_s`` up to a minute (each channel's own turn is kept in the database)."""
    period = max(1, min(60, settings.listening_interval_s))
    second = set(range(0, 60, period)) if period < 60 else {0}
    return cron(listening_job, name="listening", second=second, keep_result=0, timeout=settings.job_timeout_s)
