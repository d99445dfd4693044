"""The outbox: one row per update × channel, written in the posting transaction.

``fanout`` marks a row done once the channel's ledger rows exist and their batches are
queued; the relay re-enqueues the fan-out of every row not yet done (Redis down at post
time loses nothing).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import outbox, utcnow


async def pending_outbox(conn: AsyncConnection, limit: int = 1000) -> list[tuple[str, str]]:
    """(update_id, channel) of the rows not fanned out yet, oldest first."""
    result = await conn.execute(
        select(outbox.c.update_id, outbox.c.channel)
        .where(outbox.c.done_at.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [(str(u), str(c)) for u, c in result.all()]


async def mark_outbox(conn: AsyncConnection, update_id: str, channel: str, *, done: bool) -> None:
    column = "done_at" if done else "enqueued_at"
    await conn.execute(
        outbox.update().where(outbox.c.update_id == update_id, outbox.c.channel == channel).values({column: utcnow()})
    )
