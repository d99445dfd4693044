"""The dead letters: ledger rows that failed for good, and putting them back in line.

A row is dead when its state is ``failed``: a permanent refusal (invalid address, opted out,
hard bounce) or ``gave up after N attempts``. ``replay`` resets the failed rows of one
update and channel (``ledger.reset_failed``) and enqueues their batches, so the worker
sends them again; rows already ``sent`` are never touched. Suppressed or unsubscribed
recipients come back ``failed`` again (``unsubscribed before delivery``) when the claim
finds them inactive, so a replay never mails someone who left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcaster.db import deliveries, updates
from broadcaster.delivery import ledger
from broadcaster.jobs.queue import DELIVER_BATCH, Queue
from broadcaster.models import DeliveryState

FAILED = DeliveryState.FAILED.value


@dataclass(frozen=True)
class DeadLetters:
    """One page of failed rows, newest first, and the totals per update and channel."""

    rows: list[dict[str, Any]]
    total: int
    by_update_channel: list[dict[str, Any]]


async def list_dead(
    conn: AsyncConnection,
    *,
    update_id: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> DeadLetters:
    """Failed rows (filtered by update, channel, updated since), with per update/channel counts."""
    conditions = [deliveries.c.state == FAILED, deliveries.c.update_id.is_not(None)]  # one-offs: no update
    if update_id:
        conditions.append(deliveries.c.update_id == update_id)
    if channel:
        conditions.append(deliveries.c.channel == channel)
    if since is not None:
        conditions.append(deliveries.c.updated_at >= since)
    rows = await conn.execute(
        select(
            deliveries.c.id,
            deliveries.c.update_id,
            updates.c.incident_id,
            deliveries.c.channel,
            deliveries.c.recipient,
            deliveries.c.address,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.updated_at,
        )
        .join(updates, updates.c.id == deliveries.c.update_id)
        .where(*conditions)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    total = (await conn.execute(select(func.count()).select_from(deliveries).where(*conditions))).scalar_one()
    groups = await conn.execute(
        select(deliveries.c.update_id, deliveries.c.channel, func.count().label("failed"))
        .where(*conditions)
        .group_by(deliveries.c.update_id, deliveries.c.channel)
        .order_by(deliveries.c.update_id, deliveries.c.channel)
    )
    return DeadLetters(
        rows=[dict(r) for r in rows.mappings()],
        total=int(total),
        by_update_channel=[{"update_id": g.update_id, "channel": g.channel, "failed": int(g.failed)} for g in groups],
    )


async def replay(
    engine: AsyncEngine,
    queue: Queue,
    update_id: str,
    channel: str,
    batch_size: int,
    delivery_ids: list[int] | None = None,
) -> tuple[int, int]:
    """Reset the failed rows of ``update_id`` × ``channel`` and enqueue their batches.

    Returns (rows reset, batches enqueued). A batch that could not be enqueued (Redis down)
    is picked up by the relay cron: the rows are back in ``retry`` and overdue soon.
    """
    async with engine.begin() as conn:
        reset = await ledger.reset_failed(conn, update_id, channel, delivery_ids)
        if not reset:
            return 0, 0
        ids = (
            await conn.execute(
                select(deliveries.c.update_id, deliveries.c.channel, deliveries.c.id)
                .where(
                    deliveries.c.update_id == update_id,
                    deliveries.c.channel == channel,
                    deliveries.c.state == DeliveryState.RETRY.value,
                )
                .order_by(deliveries.c.id)
            )
        ).all()
    enqueued = 0
    stamp = int(datetime.now().timestamp() * 1000)
    for _, _, first_id, last_id in ledger.group_ranges(ids, batch_size):
        job_id = f"replay:{update_id}:{channel}:{first_id}:{last_id}:{stamp}"
        if await queue.enqueue(DELIVER_BATCH, update_id, channel, first_id, last_id, job_id=job_id):
            enqueued += 1
    return reset, enqueued
