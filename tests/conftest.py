"""Fixtures: a real database (SQLite, or PostgreSQL with BROADCASTER_TEST_DATABASE=postgres),
real Redis, the app in-process, and an in-process arq worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from arq import cron
from asgi_lifespan import LifespanManager
from sqlalchemy import delete

from broadcaster.config import Settings
from broadcaster.db import make_engine, metadata
from broadcaster.db.migrate import upgrade
from broadcaster.domain.tokens import create_token
from broadcaster.jobs.worker import make_worker, relay_job
from broadcaster.runtime import Runtime
from status_page.app import create_app

PG_ADMIN_DSN = os.environ.get("BROADCASTER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BROADCASTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# The mirror's boto3, without credentials, would ask a cloud's metadata address for some: never in tests.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def backend() -> str:
    return os.environ.get("BROADCASTER_TEST_DATABASE", "sqlite")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database for the whole session; tests empty it between them."""
    if backend() == "postgres":
        name = f"bc_test_{uuid.uuid4().hex[:10]}"

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{base}/{name}"
        upgrade(url)
        yield url
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        path = Path(tmp_path_factory.mktemp("db")) / "broadcaster.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        yield url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=f"broadcaster:test:{uuid.uuid4().hex[:12]}",
        public_url="http://status.test",
        page_name="Test Status",
        secret_key="test-secret-key-long-enough-for-serve-and-worker",  # serve/worker refuse < 32 bytes
        webhook_allow_private=True,
        retry_base_s=0.05,
        retry_max_s=1.0,
        relay_interval_s=1,
        job_timeout_s=10,
        sending_lease_s=10,
        batch_size=50,
        channel_check_interval_minutes=0,  # no pre-flight cron inside tests unless one asks
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def clean_database(database_url: str) -> AsyncIterator[None]:
    engine = make_engine(database_url, pool=False)
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))
    await engine.dispose()
    yield


@pytest.fixture
def settings(database_url: str, clean_database: None) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime.build(settings)
    yield rt
    pool = await rt.queue.pool()
    await pool.delete(settings.queue_name)
    await rt.aclose()


@pytest.fixture
async def app(settings: Settings, runtime: Runtime) -> AsyncIterator[Any]:
    application = create_app(settings, runtime)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as c:
        yield c


@pytest.fixture
async def token(runtime: Runtime) -> str:
    async with runtime.engine.begin() as conn:
        return await create_token(conn, "tests")


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def run_worker(settings: Settings, timeout_s: float = 30.0) -> None:
    """Run a real arq worker in burst mode until the queue is empty (deferred retries included)."""
    # The relay runs once at start-up; its every-second cron would keep a burst worker's queue
    # from ever being empty.
    relay_once = cron(
        relay_job,
        name="relay",
        month=1,
        day=1,
        hour=0,
        minute=0,
        second=0,  # type: ignore[arg-type]
        run_at_startup=True,
        keep_result=0,
    )
    worker = make_worker(settings, burst=True, handle_signals=False, cron_jobs=[relay_once])
    try:
        await asyncio.wait_for(worker.main(), timeout_s)
    finally:
        await worker.close()


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, **overrides: Any) -> AsyncIterator[Any]:
    """A real arq worker (its crons included) running in this event loop while the block lasts."""
    worker = make_worker(settings, handle_signals=False, **overrides)
    task = asyncio.create_task(worker.main())
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # arq's close() gathers the job tasks it cancels and re-raises their cancellation: end
        # them here first, so close() only runs the shutdown hooks and closes the pool.
        for job in worker.tasks.values():
            job.cancel()
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        worker.tasks.clear()
        await worker.close()
