"""The per-channel circuit breaker: shared state in Redis, no attempts burned while paused."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from broadcaster.db import deliveries
from broadcaster.delivery import ledger
from broadcaster.delivery.circuit import CircuitBreaker, batch_ok
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from tests.conftest import make_settings
from tests.support.posting import post_body as post


def test_batch_verdict() -> None:
    assert batch_ok(sent=1, permanent=0, retryable=9) is True
    assert batch_ok(sent=0, permanent=1, retryable=9) is True
    assert batch_ok(sent=0, permanent=0, retryable=3) is False
    assert batch_ok(sent=0, permanent=0, retryable=0) is None


async def test_breaker_opens_half_opens_and_closes(runtime: Runtime) -> None:
    breaker = CircuitBreaker(runtime.queue.pool, runtime.settings.queue_name, threshold=2, cooldown_s=0.5)
    other = CircuitBreaker(runtime.queue.pool, runtime.settings.queue_name, threshold=2, cooldown_s=0.5)
    assert await breaker.allow("sms") is None
    await breaker.record("sms", False)
    assert await breaker.allow("sms") is None
    await breaker.record("sms", False)
    assert await breaker.state("sms") == "open"
    wait = await other.allow("sms")  # another worker sees the same state
    assert wait is not None and 0 < wait <= 0.5
    await asyncio.sleep(0.6)
    assert await breaker.state("sms") == "half-open"
    assert await breaker.allow("sms") is None  # this worker wins the probe
    assert await other.allow("sms") is not None  # the other keeps waiting
    await breaker.record("sms", False)  # probe failed: open again
    assert await breaker.state("sms") == "open"
    await asyncio.sleep(0.6)
    assert await other.allow("sms") is None
    await other.record("sms", True)
    assert await breaker.state("sms") == "closed"
    assert await breaker.allow("sms") is None


async def test_paused_channel_defers_without_claiming(database_url: str, clean_database: None) -> None:
    settings = make_settings(
        database_url,
        circuit_failure_threshold=2,
        circuit_cooldown_s=1.0,
        batch_size=5,
        retry_base_s=0.01,
        retry_max_s=0.02,
    )
    rt = Runtime.build(settings)
    receiver = WebhookReceiver(script=[500] * 10)
    try:
        async with serve_app(receiver.app()) as base:
            async with rt.engine.begin() as conn:
                for n in range(20):
                    await upsert_subscriber(
                        conn,
                        SubscriberIn(channel="webhook", address=f"{base}/hook?n={n}", confirmed=True),
                        allow_private_webhooks=True,
                    )
            posted, _ = await post(
                rt, {"title": "Down", "status": "investigating", "message": "x", "channels": ["webhook"]}
            )
            await rt.fanout.fanout(posted.update_id, "webhook")
            async with rt.engine.connect() as conn:
                ranges = [r async for r in ledger.batch_ranges(conn, posted.update_id, "webhook", 5)]
            assert len(ranges) == 4
            for first, last in ranges[:2]:  # two failing batches (5 x 500 each) open the circuit
                report = await rt.fanout.deliver_batch(posted.update_id, "webhook", first, last)
                assert report.retry == 5
            assert await rt.fanout.circuit.state("webhook") == "open"
            requests_before = receiver.attempts
            for first, last in ranges[2:]:
                report = await rt.fanout.deliver_batch(posted.update_id, "webhook", first, last)
                assert report.sent == report.retry == report.failed == 0
                assert report.retry_in_s is not None and report.retry_in_s > 0.5
            assert receiver.attempts == requests_before, "a paused provider was called"
            async with rt.engine.connect() as conn:
                untouched = (
                    (await conn.execute(select(deliveries.c.attempts).where(deliveries.c.id >= ranges[2][0])))
                    .scalars()
                    .all()
                )
            assert set(untouched) == {0}, "attempts were burned while the circuit was open"
            await asyncio.sleep(1.1)
            # Half-open: the probe batch goes out; the receiver has recovered.
            receiver.script.clear()
            first, last = ranges[2]
            report = await rt.fanout.deliver_batch(posted.update_id, "webhook", first, last)
            assert report.sent == 5
            assert await rt.fanout.circuit.state("webhook") == "closed"
    finally:
        await rt.fanout.circuit.reset("webhook")
        await rt.aclose()
