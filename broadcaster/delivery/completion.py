"""One log line when an update has finished on a channel: what the operator watches for.

Every batch of an update × channel ends by asking whether any row is still unfinished; the
first to see none (across workers: a Redis ``SET NX``) logs the counts, once::

    update 3dxb on email: 1204 sent, 3 failed
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import deliveries, outbox
from broadcaster.delivery import ledger
from broadcaster.delivery.fanout import Fanout

log = logging.getLogger("broadcaster.delivery")

ANNOUNCED_TTL_S = 7 * 24 * 3600


async def announce_if_finished(fanout: Fanout, update_id: str, channel: str) -> bool:
    """Log the update's counts on ``channel`` if nothing is left to send there; True when this call logged."""
    async with fanout.engine.connect() as conn:
        counts = (await ledger.delivery_counts(conn, update_id)).get(channel)
    if counts is None or counts["pending"] or not counts["total"]:
        return False
    key = f"{fanout.settings.queue_name}:finished:{update_id}:{channel}"
    try:
        first = await (await fanout.queue.pool()).set(key, "1", nx=True, ex=ANNOUNCED_TTL_S)
    except (RedisError, OSError):
        return False  # the line is a courtesy; the ledger holds the account
    if not first:
        return False
    log.info(
        "update %s on %s: %d sent, %d failed",
        update_id,
        channel,
        counts["sent"],
        counts["failed"],
        extra={"update_id": update_id, "channel": channel},
    )
    return True


async def fanned_out_to_nobody(conn: AsyncConnection, update_id: str, channel: str) -> bool:
    """Whether the update's fan-out on ``channel`` is done and made no row (no subscriber to tell)."""
    done = await conn.scalar(
        select(outbox.c.done_at).where(outbox.c.update_id == update_id, outbox.c.channel == channel)
    )
    if done is None:
        return False
    row = await conn.scalar(
        select(deliveries.c.id).where(deliveries.c.update_id == update_id, deliveries.c.channel == channel).limit(1)
    )
    return row is None
