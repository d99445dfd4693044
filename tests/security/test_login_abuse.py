"""Login abuse: bodies capped before they are read, over-long names refused before any key or audit row,
hashed limiter keys, one audit row per lockout, and a growing delay per (username, client) that never
locks the real user out from another client. Redis is a private server, so DBSIZE is exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from broadcaster.db import audit_log
from broadcaster.domain.users import create_user
from broadcaster.ratelimit import RateLimiter, Verdict
from broadcaster.runtime import Runtime
from status_page.app import create_app
from tests.conftest import make_settings
from tests.security.helpers import CSRF, PASSWORD, login
from tests.support.redis_server import RedisServer

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MB = 1024 * 1024


@dataclass
class Site:
    app: Any
    runtime: Runtime
    redis: aioredis.Redis

    def client(self, address: str = "192.0.2.10") -> httpx.AsyncClient:
        """A browser at ``address``."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=(address, 40000)), base_url="http://status.test"
        )

    async def audit_rows(self, action: str | None = None) -> int:
        query = select(func.count()).select_from(audit_log)
        if action:
            query = query.where(audit_log.c.action == action)
        async with self.runtime.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def make_site(database_url: str, redis_server: RedisServer, **overrides: Any) -> AsyncIterator[Site]:
    settings = make_settings(database_url, redis_url=redis_server.url, **overrides)
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        async with LifespanManager(app):
            async with runtime.engine.begin() as conn:
                await create_user(conn, "commander", PASSWORD, "commander")
            yield Site(app, runtime, redis)
    finally:
        await redis.aclose()
        await runtime.aclose()


@pytest.fixture
async def site(database_url: str, clean_database: None, redis_server: RedisServer) -> AsyncIterator[Site]:
    async for value in make_site(database_url, redis_server, login_per_username=3):
        yield value


@pytest.fixture
async def default_site(database_url: str, clean_database: None, redis_server: RedisServer) -> AsyncIterator[Site]:
    """The shipped login limits (10 per username and client, 30 per client)."""
    async for value in make_site(database_url, redis_server):
        yield value


async def login_attempt(client: httpx.AsyncClient, username: str, password: str = "wrong") -> httpx.Response:
    token = CSRF.search((await client.get("/login")).text)
    assert token
    return await client.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)})


class CountedBody:
    """A body of ``size`` bytes in 64 KiB chunks that counts how much of it the server pulled."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"username=" + b"a" * (64 * 1024 - 9)
        while self.pulled < self.size:
            self.pulled += len(chunk)
            yield chunk


@pytest.mark.parametrize("path", ["/login", "/console/users", "/subscribe", "/logout"])
async def test_a_30_mb_form_is_refused_without_reading_it(site: Site, path: str) -> None:
    async with site.client() as client:
        await login(client, site.runtime, "admin", "admin")  # so that the console route reads its form
        declared = CountedBody(30 * MB)
        response = await client.post(path, content=declared, headers={**FORM, "Content-Length": str(30 * MB)})
        assert response.status_code == 413 and declared.pulled == 0  # refused on its Content-Length
        chunked = CountedBody(30 * MB)  # no Content-Length: counted as it streams
        response = await client.post(path, content=chunked, headers=FORM)
        assert response.status_code == 413
        assert chunked.pulled <= 2 * 64 * 1024, f"read {chunked.pulled} bytes of 30 MB"
        small = await client.post(path, content=b"username=a" + b"b" * 60_000, headers=FORM)
        assert small.status_code != 413  # under the 64 KiB cap the route answers


async def test_an_over_long_username_leaves_no_trace(site: Site) -> None:
    keys, rows = await site.redis.dbsize(), await site.audit_rows()
    async with site.client() as client:
        for username in ["a" * 151, "é" * 256, "x" * 60_000, "nul\x00name"]:
            for _ in range(5):
                response = await login_attempt(client, username)
                assert response.status_code == 422 and "Username:" in response.text, response.text[:200]
        for _ in range(5):
            huge = await login_attempt(client, "y" * 500_000)
            assert huge.status_code == 413
    assert await site.redis.dbsize() == keys == 0
    assert await site.audit_rows() == rows


async def test_limiter_keys_hold_no_user_input(site: Site) -> None:
    username = "Z" * 150
    async with site.client() as client:
        assert (await login_attempt(client, username)).status_code == 401
    keys = [k.decode() for k in await site.redis.keys("*")]
    assert keys and all(len(k) < 140 for k in keys), keys
    assert not any("ZZZZ" in k or "zzzz" in k for k in keys), keys


async def test_one_audit_row_per_lockout(site: Site) -> None:
    async with site.client() as client:
        codes = [(await login_attempt(client, "commander")).status_code for _ in range(10)]
    assert codes == [401] * 3 + [429] * 7
    assert await site.audit_rows("login_failed") == 3  # refused attempts write nothing
    assert await site.audit_rows("login_throttled") == 1


async def test_the_commander_still_logs_in_after_10_wrong_passwords_from_another_client(default_site: Site) -> None:
    async with default_site.client("198.51.100.7") as attacker, default_site.client("203.0.113.9") as commander:
        codes = [(await login_attempt(attacker, "commander")).status_code for _ in range(12)]
        assert codes == [401] * 10 + [429] * 2
        assert (await login_attempt(commander, "commander", PASSWORD)).status_code == 303
        # From the attacker's own client the right password waits a little, not a quarter hour.
        waiting = await login_attempt(attacker, "commander", PASSWORD)
        assert waiting.status_code == 429 and 1 <= int(waiting.headers["retry-after"]) <= 2
        await asyncio.sleep(int(waiting.headers["retry-after"]) + 0.1)
        assert (await login_attempt(attacker, "commander", PASSWORD)).status_code == 303


async def test_the_delay_grows_and_a_success_forgets_it(redis_server: RedisServer) -> None:
    redis = aioredis.Redis.from_url(redis_server.url)
    limiter = RateLimiter(redis, namespace="t")
    try:
        verdicts = [await limiter.backoff("k", free=3, max_delay_s=20) for _ in range(3)]
        assert verdicts == [Verdict(), Verdict(), Verdict(tripped=True)]
        holds = []
        for _ in range(5):
            waiting = await limiter.backoff("k", free=3, max_delay_s=20)
            assert waiting.wait_s is not None and not waiting.tripped
            holds.append(int(await redis.ttl("t:ratelimit:k:hold")))
            await redis.delete("t:ratelimit:k:hold")  # the wait has passed
            assert await limiter.backoff("k", free=3, max_delay_s=20) == Verdict()  # counted, not a new lockout
        assert holds == [2, 4, 8, 16, 20]
        assert int(await redis.get("t:ratelimit:k") or 0) == 8  # the refused attempts were not counted
        await limiter.forget("k")
        assert await redis.dbsize() == 0
    finally:
        await redis.aclose()
