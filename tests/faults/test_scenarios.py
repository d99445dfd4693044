"""Fault injection: real workers, real Redis and database, local providers; nothing may be lost.

Each scenario posts one update through the web app, breaks something while real
``broadcaster worker`` processes fan it out, and then checks, recipient by recipient, that
the receiver got what the ledger says was sent: 0 lost, duplicates only for what was in
flight at the moment of a crash. Workers killed and stopped mid fan-out are in
``test_worker_stops.py``. The table is printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from broadcaster.jobs.queue import DELIVER_BATCH, Queue
from sandbox.providers.twilio import TwilioProvider
from sandbox.serve import serve_app
from sandbox.smtp import recording_smtp
from tests.conftest import backend
from tests.faults.harness import DB_OUTAGE_S, SMTP_OUTAGE_S, fault_settings, scenario
from tests.faults.receivers import ChaosReceiver
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

WEBHOOKS = 300


def hooks(base: str, count: int) -> list[str]:
    return [f"{base}/hook/{n}" for n in range(count)]


async def test_redis_restarted_mid_fanout(database_url: str, clean_database: None, tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    settings = fault_settings(database_url, redis_url=redis_server.url, max_jobs=2)
    receiver = ChaosReceiver(delay_s=0.3)
    try:
        async with (
            serve_app(receiver.app()) as base,
            scenario(
                "Redis restarted (queue emptied)", settings, "webhook", tmp_path, lambda: receiver.received(base)
            ) as run,
        ):
            await run.add_subscribers(hooks(base, WEBHOOKS))
            run.start_workers(1)
            await run.post()
            await run.wait_received(50)
            redis_server.stop()  # no persistence: every queued job is gone
            await asyncio.sleep(2)
            redis_server.start()
            assert run.total_received() < WEBHOOKS, "restarted too late to prove anything"
            for worker in run.workers:  # a worker that gave up on Redis is restarted by its supervisor
                if not worker.alive():
                    worker.process = None
                    worker.start()
            await run.settle()
            await run.verdict(max_duplicates=0)
    finally:
        redis_server.stop()


async def test_database_unreachable_for_10_s(database_url: str, clean_database: None, tmp_path: Path) -> None:
    receiver = ChaosReceiver(delay_s=0.2)
    settings = fault_settings(database_url, max_jobs=2, job_timeout_s=12, sending_lease_s=12)
    proxy: TcpProxy | None = None
    worker_settings = settings
    if backend() == "postgres":
        url = urlsplit(database_url.replace("postgresql+asyncpg", "postgresql"))
        proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
        await proxy.start()
        proxied = database_url.replace(f"{url.hostname}:{url.port or 5432}", f"127.0.0.1:{proxy.port}")
        worker_settings = settings.model_copy(update={"database_url": proxied})
    try:
        async with (
            serve_app(receiver.app()) as base,
            scenario(
                f"database lost {DB_OUTAGE_S:.0f} s ({backend()})",
                settings,
                "webhook",
                tmp_path,
                lambda: receiver.received(base),
            ) as run,
        ):
            await run.add_subscribers(hooks(base, WEBHOOKS))
            run.start_workers(1, settings=worker_settings)
            await run.post()
            await run.wait_received(50)
            if proxy is not None:
                await proxy.cut()  # every connection dropped, new ones refused
                await asyncio.sleep(DB_OUTAGE_S)
                await proxy.restore()
            else:
                await asyncio.to_thread(_lock_sqlite, database_url, DB_OUTAGE_S)
            assert run.total_received() < WEBHOOKS, "the outage came too late to prove anything"
            for worker in run.workers:
                if not worker.alive():
                    worker.process = None
                    worker.start()
            await run.settle(timeout_s=120)
            await run.verdict(max_duplicates=settings.max_jobs * settings.batch_size)
    finally:
        if proxy is not None:
            await proxy.stop()


def _lock_sqlite(database_url: str, seconds: float) -> None:
    """Hold SQLite's write lock in an exclusive transaction (no writer gets through)."""
    path = database_url.split("///", 1)[1]
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        threading.Event().wait(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def test_smtp_sink_down(database_url: str, clean_database: None, tmp_path: Path) -> None:
    with recording_smtp() as smtp:
        proxy = TcpProxy(smtp.host, smtp.port)
        await proxy.start()

        def received() -> Counter[str]:
            return Counter(rcpt for message in smtp.received for rcpt in message.rcpt_tos)

        settings = fault_settings(
            database_url, smtp_host="127.0.0.1", smtp_port=proxy.port, email_from="status@example.com", smtp_timeout_s=3
        )
        try:
            async with scenario(f"SMTP sink down {SMTP_OUTAGE_S:.0f} s", settings, "email", tmp_path, received) as run:
                await run.add_subscribers([f"user{n}@example.org" for n in range(200)])
                await proxy.cut()
                run.start_workers(1)
                await run.post()
                await asyncio.sleep(SMTP_OUTAGE_S)
                assert run.total_received() == 0
                await proxy.restore()
                await run.settle(timeout_s=60 + SMTP_OUTAGE_S)
                await run.verdict(max_duplicates=0)
        finally:
            await proxy.stop()


@pytest.mark.parametrize("mode", ["500", "429", "timeout", "close"])
async def test_http_provider_misbehaves(mode: str, database_url: str, clean_database: None, tmp_path: Path) -> None:
    receiver = ChaosReceiver()
    settings = fault_settings(database_url)
    async with serve_app(receiver.app()) as upstream:
        port = int(upstream.rsplit(":", 1)[1])
        proxy = TcpProxy("127.0.0.1", port)
        await proxy.start()
        base = f"http://127.0.0.1:{proxy.port}"
        label = {
            "500": "webhooks answer 500",
            "429": "webhooks answer 429 Retry-After",
            "timeout": "webhooks time out",
            "close": "webhooks close connections",
        }[mode]
        try:
            async with scenario(label, settings, "webhook", tmp_path, lambda: receiver.received(base)) as run:
                await run.add_subscribers(hooks(base, 200))
                if mode == "close":
                    await proxy.cut(reset=True)
                else:
                    receiver.misbehave(mode, 4)
                run.start_workers(1)
                await run.post()
                await asyncio.sleep(4)
                await proxy.restore()
                await run.settle()
                row = await run.verdict(max_duplicates=0)
            assert receiver.refused or proxy.connections, "the fault never happened"
            assert row.sent == 200
        finally:
            await proxy.stop()


@pytest.mark.parametrize("mode", ["429", "500"])
async def test_sms_provider_misbehaves(mode: str, database_url: str, clean_database: None, tmp_path: Path) -> None:
    provider = TwilioProvider()
    async with serve_app(provider.app) as base:
        settings = fault_settings(
            database_url,
            twilio_base_url=base,
            twilio_account_sid=provider.account_sid,
            twilio_auth_token=provider.auth_token,
            twilio_from="+15005550006",
            sms_rate_per_s=1000.0,
        )

        def received() -> Counter[str]:
            return Counter(m["to"] for m in provider.messages)

        async with scenario(f"Twilio answers {mode}", settings, "sms", tmp_path, received) as run:
            await run.add_subscribers([f"+1415555{n:04d}" for n in range(100, 250)])
            if mode == "429":
                provider.throttle(times=40, retry_after_s=1)
            else:
                provider.fail(times=60, status=500)
            run.start_workers(1)
            await run.post()
            await run.settle()
            await run.verdict(max_duplicates=0)
        assert provider.requests > len(run.addresses), "the provider never refused anything"


async def test_workers_racing_on_the_same_jobs(database_url: str, clean_database: None, tmp_path: Path) -> None:
    settings = fault_settings(database_url, max_jobs=4)
    receiver = ChaosReceiver(delay_s=0.05)
    async with (
        serve_app(receiver.app()) as base,
        scenario(
            "3 workers racing, every batch x3", settings, "webhook", tmp_path, lambda: receiver.received(base)
        ) as run,
    ):
        await run.add_subscribers(hooks(base, WEBHOOKS))
        await run.post()  # fan-out job queued before any worker runs
        # Every batch is also enqueued twice more under other job ids (a relay and a replay racing).
        from broadcaster.db import make_engine
        from broadcaster.delivery.fanout import Fanout
        from broadcaster.delivery.registry import Registry

        engine = make_engine(settings.database_url)
        queue = Queue(settings.redis_url, settings.queue_name)
        fanout = Fanout(settings, engine, Registry.build(settings), queue)
        try:
            await fanout.fanout(run.update_id, "webhook")  # writes rows, enqueues the batches once
            from broadcaster.delivery import ledger

            async with engine.connect() as conn:
                ranges = [r async for r in ledger.batch_ranges(conn, run.update_id, "webhook", settings.batch_size)]
            for copy in ("relay", "replay"):
                for first, last in ranges:
                    assert await queue.enqueue(
                        DELIVER_BATCH,
                        run.update_id,
                        "webhook",
                        first,
                        last,
                        job_id=f"{copy}:{run.update_id}:{first}:{last}",
                    )
        finally:
            await queue.aclose()
            await engine.dispose()
        run.start_workers(3)
        await run.settle()
        await run.verdict(max_duplicates=0)
