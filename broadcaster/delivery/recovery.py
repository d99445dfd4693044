"""What the relay takes back: claims of workers that died, claims past their lease, lost jobs.

A row is claimed (state ``sending``) by one worker, named in its claim token
(``claims.claim_token``). When that worker's heartbeat has expired (``jobs.heartbeat``), its
rows go back in line within seconds (``release_claims_of``); the lease
(``release_stale_claims``) stays as the last resort for a worker that is alive but stuck.
``overdue_ranges`` finds due rows no job has touched for a while (their job was lost with
Redis's memory). Each returns the ranges to enqueue again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import deliveries, utcnow
from broadcaster.delivery.claims import claimant_of, unsent_in_range
from broadcaster.delivery.ledger import ACTIVE_STATES, RowRange, group_ranges
from broadcaster.models import DeliveryState

_SENDING = deliveries.c.state == DeliveryState.SENDING.value


async def claimants(conn: AsyncConnection) -> set[str]:
    """The workers that hold claimed rows now."""
    tokens = (await conn.execute(select(deliveries.c.claim).where(_SENDING).distinct())).scalars()
    return {worker for token in tokens if token and (worker := claimant_of(token))}


async def _release(conn: AsyncConnection, which: Any, reason: str, batch_size: int) -> list[RowRange]:
    now = utcnow()
    rows = (
        await conn.execute(
            select(deliveries.c.update_id, deliveries.c.channel, deliveries.c.id)
            .where(which)
            .order_by(deliveries.c.update_id, deliveries.c.channel, deliveries.c.id)
        )
    ).all()
    if rows:
        await conn.execute(
            deliveries.update()
            .where(which)
            .values(state=DeliveryState.RETRY.value, claim=None, next_attempt_at=now, updated_at=now, last_error=reason)
        )
    return group_ranges([r for r in rows if r.update_id is not None], batch_size)


async def release_claims_of(conn: AsyncConnection, workers: Collection[str], batch_size: int) -> list[RowRange]:
    """Rows claimed by ``workers`` (gone: no heartbeat) go back to ``retry``; returns their ranges."""
    if not workers:
        return []
    theirs = or_(*(deliveries.c.claim.startswith(f"{worker}.", autoescape=True) for worker in sorted(workers)))
    return await _release(conn, and_(_SENDING, theirs), "worker stopped while sending; retried", batch_size)


async def release_stale_claims(conn: AsyncConnection, lease_s: float, batch_size: int) -> list[RowRange]:
    """Rows ``sending`` for longer than ``lease_s`` go back to ``retry``; returns their ranges."""
    stale = and_(_SENDING, deliveries.c.claimed_at < utcnow() - timedelta(seconds=lease_s))
    return await _release(conn, stale, "claim outlived its lease; retried", batch_size)


async def overdue_ranges(conn: AsyncConnection, stale_s: float, batch_size: int) -> list[RowRange]:
    """Ranges of due rows that no job has touched for ``stale_s`` (their job was lost)."""
    cutoff = utcnow() - timedelta(seconds=stale_s)
    result = await conn.execute(
        select(deliveries.c.update_id, deliveries.c.channel, deliveries.c.id)
        .where(
            deliveries.c.update_id.is_not(None),
            deliveries.c.state.in_(ACTIVE_STATES),
            deliveries.c.updated_at < cutoff,
            or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at < cutoff),
        )
        .order_by(deliveries.c.update_id, deliveries.c.channel, deliveries.c.id)
        .limit(batch_size * 50)
    )
    return group_ranges(result.all(), batch_size)


async def touch(conn: AsyncConnection, ranges: Sequence[RowRange]) -> None:
    """Mark the rows of ``ranges`` as just enqueued again (so they are not overdue at once)."""
    now = utcnow()
    for update_id, channel, first_id, last_id in ranges:
        await conn.execute(
            deliveries.update().where(unsent_in_range(update_id, channel, first_id, last_id)).values(updated_at=now)
        )
