"""Spreading a fan-out over the workers: the ledger rows go in chunks, batches are sized to the
live job slots, and each chunk's batches are enqueued as soon as it is in.

The first chunk is one batch, so the first mail leaves while the rest is still being inserted;
chunks then grow (short transactions: the recorder's writes wait on them). The batches are
consecutive windows of the update's rows in id order, so a fan-out run again enqueues the same
job ids.
"""

from __future__ import annotations

import logging
import math

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.config import Settings
from broadcaster.delivery import ledger
from broadcaster.errors import RetryableError
from broadcaster.jobs import heartbeat
from broadcaster.jobs.queue import Queue

log = logging.getLogger(__name__)

FANOUT_CHUNK_ROWS = 10_000  # ledger rows inserted per transaction
MIN_BATCH_ROWS = 25  # below this a batch's own cost (claim, session, job) outweighs spreading it


async def add_and_enqueue(engine: AsyncEngine, queue: Queue, settings: Settings, update_id: str, channel: str) -> int:
    """The subscriber rows of ``update_id`` on ``channel`` in chunks, each chunk's full batches
    enqueued once it is in; returns the number of batches."""
    size = await batch_size(engine, queue, settings, update_id, channel)
    chunk, after, enqueued_to, batches = size, "", 0, 0
    while True:
        async with engine.begin() as conn:
            after = await ledger.add_subscriber_rows(conn, update_id, channel, after, chunk) or ""
        added, enqueued_to = await enqueue_batches(engine, queue, update_id, channel, size, enqueued_to, not after)
        batches += added
        if not after:
            return batches
        chunk = min(chunk * 4, max(size, FANOUT_CHUNK_ROWS))


async def batch_size(engine: AsyncEngine, queue: Queue, settings: Settings, update_id: str, channel: str) -> int:
    """Rows per batch: at most ``batch_size``, and as many batches as whole rounds of every live
    worker's job slots, so that each slot has work from the start and none idles through a
    short last round (5,000 rows and 8 slots: 8 batches of 625, not 5 of 1,000)."""
    async with engine.connect() as conn:
        rows = await ledger.count_matching(conn, update_id, channel)
    slots = settings.max_jobs * await live_workers(queue)
    rounds = max(1, math.ceil(rows / (slots * settings.batch_size)))
    return min(settings.batch_size, max(MIN_BATCH_ROWS, math.ceil(rows / (slots * rounds))))


async def live_workers(queue: Queue) -> int:
    """How many workers share the batches (at least one: this one, or the one to come)."""
    try:
        redis = await queue.pool()
        workers = await heartbeat.registered(redis, queue.queue_name)
        workers -= await heartbeat.dead(redis, queue.queue_name, workers)
    except Exception as exc:  # Redis away: the enqueue after this says so; size for one worker
        log.debug("live workers unknown (%s)", exc)
        return 1
    return max(1, len(workers))


async def enqueue_batches(
    engine: AsyncEngine, queue: Queue, update_id: str, channel: str, size: int, after: int = 0, partial: bool = True
) -> tuple[int, int]:
    """Enqueue the batches of ``size`` rows after ledger id ``after``: (how many, the last id covered)."""
    count = 0
    async with engine.connect() as conn:
        ranges = ledger.batch_ranges(conn, update_id, channel, size, after, partial)
        async for first_id, last_id in ranges:
            if not await queue.enqueue_batch(update_id, channel, first_id, last_id):
                raise RetryableError("Redis out of reach while enqueueing batches")
            count, after = count + 1, last_id
    return count, after
