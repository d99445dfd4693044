"""The fan-out inserts the ledger in chunks, enqueues each chunk's batches at once, and sizes them.

Real Redis and database; the fan-out driven directly. The first batch is in the queue while
most rows are not yet in the ledger, the batches are the same consecutive windows a single
insert gives, and a second fan-out of the same update adds nothing and enqueues the same jobs.
A broadcast smaller than the job slots times the batch size is spread over every slot of every
live worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcaster.config import Settings
from broadcaster.db import deliveries
from broadcaster.delivery import ledger
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.jobs import heartbeat
from broadcaster.jobs.queue import Queue
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from tests.support.posting import post_body

BATCH = 10
SUBSCRIBERS = 95


class RecordingQueue(Queue):
    """A real queue that notes each batch enqueued and how many ledger rows existed then."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.redis_url, settings.queue_name)
        self.runtime: Runtime | None = None
        self.batches: list[tuple[int, int, int]] = []  # (first_id, last_id, ledger rows at that moment)

    async def enqueue_batch(self, update_id: str, channel: str, first_id: int, last_id: int, **kw: Any) -> bool:
        assert self.runtime is not None
        async with self.runtime.engine.connect() as conn:
            rows = await conn.scalar(select(func.count()).where(deliveries.c.update_id == update_id))
        self.batches.append((first_id, last_id, int(rows or 0)))
        return await super().enqueue_batch(update_id, channel, first_id, last_id, **kw)


@asynccontextmanager
async def recording(settings: Settings, **changes: Any) -> AsyncIterator[tuple[Runtime, RecordingQueue]]:
    changed = settings.model_copy(update=changes)
    queue = RecordingQueue(changed)
    rt = Runtime.build(changed, queue=queue)
    queue.runtime = rt
    try:
        yield rt, queue
    finally:
        await (await queue.pool()).delete(changed.queue_name)
        await rt.aclose()


async def posted_to_subscribers(rt: Runtime) -> str:
    async with rt.engine.begin() as conn:
        for n in range(SUBSCRIBERS):
            address = f"http://127.0.0.1:9/hook/{n}"
            await upsert_subscriber(
                conn, SubscriberIn(channel="webhook", address=address, confirmed=True), allow_private_webhooks=True
            )
    posted, _ = await post_body(
        rt, {"title": "Outage", "status": "investigating", "message": "Looking.", "channels": ["webhook"]}
    )
    return posted.update_id


@pytest.fixture
async def chunked(settings: Settings) -> AsyncIterator[tuple[Runtime, RecordingQueue]]:
    async with recording(settings, batch_size=BATCH, max_jobs=1) as pair:  # one slot: batches of BATCH
        yield pair


async def test_first_batch_is_queued_before_the_rest_is_inserted(chunked: tuple[Runtime, RecordingQueue]) -> None:
    rt, queue = chunked
    update_id = await posted_to_subscribers(rt)

    batches = await rt.fanout.fanout(update_id, "webhook")

    assert batches == len(queue.batches) == -(-SUBSCRIBERS // BATCH)
    first_rows = queue.batches[0][2]
    assert first_rows == BATCH, "the first chunk is one batch, queued before the next chunk is inserted"
    assert queue.batches[-1][2] == SUBSCRIBERS
    async with rt.engine.connect() as conn:
        whole = [r async for r in ledger.batch_ranges(conn, update_id, "webhook", BATCH)]
        ids = (await conn.execute(select(deliveries.c.id).where(deliveries.c.update_id == update_id))).scalars()
        recipients = await conn.scalar(
            select(func.count(deliveries.c.recipient.distinct())).where(deliveries.c.update_id == update_id)
        )
    assert [(first, last) for first, last, _ in queue.batches] == whole, "the windows a single insert gives"
    assert len(list(ids)) == recipients == SUBSCRIBERS

    queue.batches.clear()
    assert await rt.fanout.fanout(update_id, "webhook") == len(whole)
    assert [(first, last) for first, last, _ in queue.batches] == whole, "the same jobs again (ids dedupe them)"
    assert {rows for _, _, rows in queue.batches} == {SUBSCRIBERS}, "nothing inserted twice"


async def test_a_small_broadcast_is_spread_over_every_job_slot(settings: Settings) -> None:
    async with recording(settings, batch_size=1000, max_jobs=4) as (rt, queue):
        update_id = await posted_to_subscribers(rt)
        assert await rt.fanout.fanout(update_id, "webhook") == 4  # not one batch of 95 for one slot
    sizes = [last - first + 1 for first, last, _ in queue.batches]
    assert sizes == [25, 25, 25, 20], sizes  # 95 rows over 4 slots, ids consecutive here


async def test_batches_are_shared_by_every_live_worker(settings: Settings) -> None:
    async with recording(settings, batch_size=1000, max_jobs=1) as (rt, queue):
        redis = await queue.pool()
        beats = [heartbeat.Heartbeat(redis, queue.queue_name, host=f"host{n}") for n in range(2)]
        for beat in beats:
            await beat.start()
        try:
            update_id = await posted_to_subscribers(rt)
            assert await rt.fanout.fanout(update_id, "webhook") == 2  # one slot on each of two workers
        finally:
            for beat in beats:
                await beat.stop()
    sizes = [last - first + 1 for first, last, _ in queue.batches]
    assert sizes == [48, 47], sizes  # alone, one worker with one slot would take all 95 in one batch
