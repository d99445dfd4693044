"""The shared credential store on the real database and Redis: one renewal at a time, sealed at rest."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from broadcaster.db import channel_credentials, make_engine
from broadcaster.delivery.credential_store import SharedCredentials
from broadcaster.delivery.credentials import Credential, Renew
from broadcaster.errors import RetryableError
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.usefixtures("clean_database")

SECRET_KEY = "test-secret-key-long-enough-for-serve-and-worker"
TOKEN = "refresh-token-that-must-never-be-stored-in-clear"

MakeStore = Callable[..., SharedCredentials]


@pytest.fixture
async def make_store(database_url: str) -> AsyncIterator[MakeStore]:
    """Stores as separate workers have them: each with its own engine; one lock namespace per test."""
    engines = []
    prefix = f"broadcaster:test:{uuid.uuid4().hex[:12]}"

    def make(secret_key: str = SECRET_KEY, **options: float) -> SharedCredentials:
        engine = make_engine(database_url)
        engines.append(engine)
        return SharedCredentials(engine, REDIS_URL, secret_key, lock_prefix=prefix, **options)

    yield make
    for engine in engines:
        await engine.dispose()


def counting_renewal(calls: list[str], label: str, delay_s: float = 0.2) -> Renew:
    """A renewal that, like a token refresh, takes a while and renews only what nobody renewed yet."""

    async def renew(current: Credential | None) -> Credential | None:
        if current is not None:
            return None  # another worker renewed it while this one waited for the lock
        calls.append(label)
        await asyncio.sleep(delay_s)
        return Credential({"refresh_token": f"{TOKEN}-{label}"}, datetime.now(UTC))

    return renew


async def stored_rows(database_url: str) -> list[tuple[str, str, int]]:
    engine = make_engine(database_url, pool=False)
    table = channel_credentials
    async with engine.connect() as conn:
        rows = (await conn.execute(select(table.c.name, table.c.ciphertext, table.c.version))).all()
    await engine.dispose()
    return [(row.name, row.ciphertext, row.version) for row in rows]


async def test_two_workers_rotating_at_once_renew_once(make_store: MakeStore, database_url: str) -> None:
    one, two = make_store(), make_store()
    calls: list[str] = []
    first, second = await asyncio.gather(
        one.rotate("x:oauth2:app", counting_renewal(calls, "one")),
        two.rotate("x:oauth2:app", counting_renewal(calls, "two")),
    )
    assert len(calls) == 1, "the second worker renewed instead of waiting for the first"
    assert first is not None and second is not None
    assert first.value == second.value and first.version == second.version == 1
    assert await two.load("x:oauth2:app") == first
    [(name, ciphertext, version)] = await stored_rows(database_url)
    assert (name, version) == ("x:oauth2:app", 1)
    assert TOKEN not in ciphertext and "refresh_token" not in ciphertext


async def test_a_lapsed_lock_loses_the_compare_and_swap(
    make_store: MakeStore, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Locks that lapse before the renewal ends: both renew, and the later writer keeps the first one's.
    one, two = make_store(lock_ttl_s=0.05), make_store(lock_ttl_s=0.05)
    calls: list[str] = []
    first = asyncio.create_task(one.rotate("bluesky:status", counting_renewal(calls, "one", delay_s=0.3)))
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.WARNING):
        second = await two.rotate("bluesky:status", counting_renewal(calls, "two", delay_s=0.3))
    assert calls == ["one", "two"]
    assert "another worker renewed the bluesky:status credential first" in caplog.text
    winner = await first
    assert winner is not None and second is not None
    assert second.value == winner.value == {"refresh_token": f"{TOKEN}-one"}
    assert [version for _, _, version in await stored_rows(database_url)] == [1]


async def test_a_credential_sealed_with_another_secret_key_reads_as_absent(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    await make_store().rotate("x:oauth2:app", counting_renewal(calls, "old", delay_s=0))
    rotated_key = make_store(secret_key="another-secret-key-after-a-rotation-0123")
    with caplog.at_level(logging.WARNING):
        assert await rotated_key.load("x:oauth2:app") is None
    assert "does not decrypt with this secret key" in caplog.text
    renewed = await rotated_key.rotate("x:oauth2:app", counting_renewal(calls, "new", delay_s=0))
    assert calls == ["old", "new"]
    assert renewed is not None and renewed.version == 2  # the row was replaced, not duplicated
    assert await make_store().load("x:oauth2:app") is None  # and the old key no longer reads it


async def test_redis_down_is_a_retryable_error(database_url: str) -> None:
    engine = make_engine(database_url)
    store = SharedCredentials(engine, "redis://127.0.0.1:1/0", SECRET_KEY)
    calls: list[str] = []
    with pytest.raises(RetryableError, match="Redis unavailable"):
        await store.rotate("x:oauth2:app", counting_renewal(calls, "one"))
    await engine.dispose()
    assert calls == []


async def test_a_held_lock_past_the_wait_is_a_retryable_error(make_store: MakeStore) -> None:
    holder, waiter = make_store(), make_store(lock_wait_s=0.1)
    calls: list[str] = []
    slow = asyncio.create_task(holder.rotate("x:oauth2:app", counting_renewal(calls, "holder", delay_s=0.5)))
    await asyncio.sleep(0.05)
    with pytest.raises(RetryableError, match="being renewed by another worker"):
        await waiter.rotate("x:oauth2:app", counting_renewal(calls, "waiter"))
    await slow
    assert calls == ["holder"]
