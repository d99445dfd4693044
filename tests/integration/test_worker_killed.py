"""SIGKILL the worker in the middle of a 1,000-subscriber fan-out, start it again: nothing lost.

The lease is set far out of reach: the dead worker's rows come back because its heartbeat
expired, within seconds, and only what was on the wire is sent twice.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcaster.db import deliveries, subscribers
from broadcaster.delivery import ledger
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from channels.webhook import WebhookChannel
from sandbox.serve import serve_app
from tests.conftest import make_settings
from tests.support.worker_process import WorkerProcess

SUBSCRIBERS = 1000
WEBHOOK_CONCURRENCY = int(inspect.signature(WebhookChannel).parameters["concurrency"].default)


class CountingReceiver:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            await request.body()
            await asyncio.sleep(0.02)  # a realistic receiver: the fan-out takes a few seconds
            self.seen[request.headers["webhook-id"]] += 1
            return Response(status_code=200)

        return Starlette(routes=[Route("/hook/{n}", hook, methods=["POST"])])


async def wait_for(predicate, timeout_s: float, interval_s: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval_s)
    return False


@pytest.mark.slow
async def test_sigkill_mid_fanout_loses_nothing(database_url: str, clean_database: None, tmp_path: Path) -> None:
    settings = make_settings(
        database_url, batch_size=200, max_jobs=4, sending_lease_s=600, job_timeout_s=30, relay_interval_s=1
    )
    runtime = Runtime.build(settings)
    receiver = CountingReceiver()
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        async with serve_app(receiver.app()) as base:
            async with runtime.engine.begin() as conn:
                for n in range(SUBSCRIBERS):
                    await upsert_subscriber(
                        conn,
                        SubscriberIn(channel="webhook", address=f"{base}/hook/{n}", confirmed=True),
                        allow_private_webhooks=True,
                    )
            from tests.support.posting import post_body as post

            posted, queued = await post(
                runtime,
                {"title": "Outage", "status": "investigating", "message": "Investigating.", "channels": ["webhook"]},
            )
            assert queued
            worker.start()
            assert await wait_for(lambda: _gt(receiver, 250), 60), "the fan-out never got going"
            worker.kill()
            seen_at_kill = sum(receiver.seen.values())
            assert seen_at_kill < SUBSCRIBERS, "killed too late to prove anything"

            worker.start()
            restarted = time.monotonic()

            async def all_sent() -> bool:
                async with runtime.engine.connect() as conn:
                    counts = await ledger.delivery_counts(conn, posted.update_id)
                return counts.get("webhook", {}).get("sent") == SUBSCRIBERS

            assert await wait_for(all_sent, 60), (tmp_path / "worker.log").read_text()[-3000:]
            done_s = time.monotonic() - restarted
            await asyncio.sleep(0.5)
        async with runtime.engine.connect() as conn:
            per_subscriber = (
                await conn.execute(
                    select(deliveries.c.recipient, func.count())
                    .where(deliveries.c.update_id == posted.update_id, deliveries.c.state == "sent")
                    .group_by(deliveries.c.recipient)
                )
            ).all()
            subscriber_ids = set((await conn.execute(select(subscribers.c.id))).scalars())
        assert len(per_subscriber) == SUBSCRIBERS
        assert all(count == 1 for _, count in per_subscriber)
        assert {r for r, _ in per_subscriber} == subscriber_ids
        expected_ids = {f"msg_{posted.update_id}_{sid}" for sid in subscriber_ids}
        assert set(receiver.seen) == expected_ids, "every subscriber's webhook id arrived at least once"
        duplicates = sum(c - 1 for c in receiver.seen.values())
        print(
            f"\nSIGKILL fan-out: {SUBSCRIBERS} subscribers, {seen_at_kill} received before the kill, "
            f"{sum(receiver.seen.values())} received in all, {duplicates} duplicates (in flight at the kill), "
            f"all sent {done_s:.1f} s after the restart"
        )
        assert duplicates <= WEBHOOK_CONCURRENCY, "only what was on the wire is sent twice, never a batch"
        assert done_s <= 30
    finally:
        worker.stop()
        await runtime.aclose()


async def _gt(receiver: CountingReceiver, n: int) -> bool:
    return sum(receiver.seen.values()) > n
