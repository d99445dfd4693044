"""Claims tied to live workers, progress written as it happens, and a stopping batch handing back.

Real Redis and database; the fan-out driven directly; webhooks to a local receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcaster.db import deliveries, utcnow
from broadcaster.delivery import claims
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.jobs import heartbeat
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from sandbox.serve import serve_app
from tests.support.posting import post_body
from tests.support.redis_server import RedisServer


class SlowReceiver:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.seen: Counter[str] = Counter()
        self._arrived = asyncio.Condition()

    async def reached(self, count: int, timeout_s: float = 10) -> None:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: sum(self.seen.values()) >= count), timeout_s)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            await request.body()
            await asyncio.sleep(self.delay_s)
            self.seen[request.url.path] += 1
            async with self._arrived:
                self._arrived.notify_all()
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook/{n}", hook, methods=["POST"])])


async def fanned_out(rt: Runtime, base: str, count: int) -> tuple[str, tuple[int, int]]:
    """An update with ``count`` webhook rows in the ledger; its id and the rows' id range."""
    async with rt.engine.begin() as conn:
        for n in range(count):
            await upsert_subscriber(
                conn,
                SubscriberIn(channel="webhook", address=f"{base}/hook/{n}", confirmed=True),
                allow_private_webhooks=True,
            )
    posted, _ = await post_body(
        rt, {"title": "Outage", "status": "investigating", "message": "Looking.", "channels": ["webhook"]}
    )
    await rt.fanout.fanout(posted.update_id, "webhook")
    async with rt.engine.connect() as conn:
        ids = [
            int(i)
            for i in (
                await conn.execute(
                    select(deliveries.c.id).where(deliveries.c.update_id == posted.update_id).order_by(deliveries.c.id)
                )
            ).scalars()
        ]
    return posted.update_id, (ids[0], ids[-1])


async def states(rt: Runtime, update_id: str) -> Counter[str]:
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(select(deliveries.c.state).where(deliveries.c.update_id == update_id))).scalars()
        return Counter(rows)


async def claim_as(rt: Runtime, update_id: str, span: tuple[int, int], worker: str) -> None:
    async with rt.engine.begin() as conn:
        assert await claims.claim(conn, update_id, "webhook", *span, claimant=worker)


async def test_relay_takes_back_only_the_claims_of_workers_without_a_heartbeat(runtime: Runtime) -> None:
    rt = runtime
    async with serve_app(SlowReceiver(0).app()) as base:
        update_id, (first, last) = await fanned_out(rt, base, 6)
    alive = heartbeat.Heartbeat(await rt.queue.pool(), rt.settings.queue_name, host="elsewhere")
    await alive.beat()
    await claim_as(rt, update_id, (first, first + 2), alive.worker_id)
    await claim_as(rt, update_id, (first + 3, last), "d3adw0rker00")
    try:
        result = await rt.fanout.relay()
        assert result["released"] == 1 and result["batches"] == 1, result
        assert await states(rt, update_id) == {"sending": 3, "retry": 3}, "the live worker keeps its rows"
        async with rt.engine.connect() as conn:
            back = (
                await conn.execute(
                    select(deliveries.c.last_error, deliveries.c.claim).where(
                        deliveries.c.update_id == update_id, deliveries.c.state == "retry"
                    )
                )
            ).all()
        assert {(error, claim) for error, claim in back} == {("worker stopped while sending; retried", None)}
        await alive.stop()  # a clean stop: its rows are free at the next round, no waiting for a TTL
        assert (await rt.fanout.relay())["released"] == 1
        assert await states(rt, update_id) == {"retry": 6}
    finally:
        await alive.stop()


async def test_relay_requeues_a_batch_a_dead_worker_had_taken_but_not_claimed(runtime: Runtime) -> None:
    rt = runtime
    async with serve_app(SlowReceiver(0).app()) as base:
        update_id, (first, last) = await fanned_out(rt, base, 4)
    pool = await rt.queue.pool()
    dying = heartbeat.Heartbeat(pool, rt.settings.queue_name, host="elsewhere")
    await dying.start()
    await dying.hold(heartbeat.job_name(update_id, "webhook", first, last))
    assert (await rt.fanout.relay())["batches"] == 0, "alive: its job is its own"
    assert dying._task is not None
    dying._task.cancel()  # SIGKILL: no more beats, no clean stop ...
    await pool.delete(heartbeat.worker_key(rt.settings.queue_name, dying.worker_id))  # ... and its key expired
    result = await rt.fanout.relay()
    assert result["batches"] == 1, "the rows it never claimed go back in the queue now, not after arq's timeout"
    assert dying.worker_id not in await heartbeat.registered(pool, rt.settings.queue_name), "and it is forgotten"
    assert (await rt.fanout.relay())["batches"] == 0


async def test_the_lease_still_frees_a_live_but_stuck_worker(runtime: Runtime) -> None:
    rt = runtime
    async with serve_app(SlowReceiver(0).app()) as base:
        update_id, span = await fanned_out(rt, base, 2)
    stuck = heartbeat.Heartbeat(await rt.queue.pool(), rt.settings.queue_name, host="elsewhere")
    await stuck.beat()
    try:
        await claim_as(rt, update_id, span, stuck.worker_id)
        assert (await rt.fanout.relay())["released"] == 0
        async with rt.engine.begin() as conn:  # claimed longer ago than the lease
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.update_id == update_id)
                .values(claimed_at=utcnow() - timedelta(seconds=rt.settings.sending_lease_s + 1))
            )
        assert (await rt.fanout.relay())["released"] == 1
    finally:
        await stuck.stop()


async def test_nobody_is_dead_while_redis_has_just_started(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()  # empty: every worker's key is missing for a moment, whatever its health
    try:
        from redis.asyncio import Redis

        redis = Redis.from_url(server.url)
        try:
            assert await heartbeat.dead(redis, "q", {"a1", "b2"}) == set()
        finally:
            await redis.aclose()
    finally:
        server.stop()


async def test_outcomes_reach_the_ledger_while_the_batch_still_runs(runtime: Runtime) -> None:
    rt = runtime
    receiver = SlowReceiver(delay_s=0.3)
    async with serve_app(receiver.app()) as base:
        update_id, span = await fanned_out(rt, base, 40)  # 32 at once, then 8 more: two rounds
        batch = asyncio.create_task(rt.fanout.deliver_batch(update_id, "webhook", *span))
        await receiver.reached(32)
        await asyncio.sleep(0.1)
        during = await states(rt, update_id)
        assert not batch.done()
        report = await batch
    assert during["sent"] >= 32 and during["sending"] == 40 - during["sent"], during
    assert report.sent == 40 and await states(rt, update_id) == {"sent": 40}


async def test_a_stopping_batch_finishes_what_is_on_the_wire_and_hands_back_the_rest(runtime: Runtime) -> None:
    rt = runtime
    receiver = SlowReceiver(delay_s=0.3)
    async with serve_app(receiver.app()) as base:
        update_id, span = await fanned_out(rt, base, 80)
        batch = asyncio.create_task(rt.fanout.deliver_batch(update_id, "webhook", *span))
        await receiver.reached(10)
        rt.fanout.stop()
        report = await batch
        assert await rt.fanout.deliver_batch(update_id, "webhook", *span) == type(report)(retry_in_s=0.0), (
            "a stopping worker claims nothing more"
        )
    counts = await states(rt, update_id)
    assert report.sent == sum(receiver.seen.values()) == counts["sent"], "what went out is recorded, nothing more"
    assert 0 < report.handed_back == counts["retry"] == 80 - report.sent
    async with rt.engine.connect() as conn:
        attempts = set(
            (
                await conn.execute(
                    select(deliveries.c.attempts).where(
                        deliveries.c.update_id == update_id, deliveries.c.state == "retry"
                    )
                )
            ).scalars()
        )
    assert attempts == {0}, "a send never attempted costs no attempt"


async def test_a_cancelled_batch_records_what_went_out_and_puts_the_rest_back(runtime: Runtime) -> None:
    rt = runtime
    receiver = SlowReceiver(delay_s=0.3)
    async with serve_app(receiver.app()) as base:
        update_id, span = await fanned_out(rt, base, 80)
        batch = asyncio.create_task(rt.fanout.deliver_batch(update_id, "webhook", *span))
        await receiver.reached(32)
        await asyncio.sleep(0.05)
        batch.cancel()  # a job timeout: whatever is on the wire is cut off
        with contextlib.suppress(asyncio.CancelledError):
            await batch
    counts = await states(rt, update_id)
    assert counts["sent"] >= 32 and counts["sent"] + counts["retry"] == 80, counts
    assert "sending" not in counts, "nothing stays claimed by a job that ended"
