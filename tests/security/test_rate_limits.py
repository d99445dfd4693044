"""Login and sign-up are rate limited in Redis: fixed windows per client, a growing delay per (username, client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from broadcaster.runtime import Runtime
from status_page.app import create_app
from tests.conftest import make_settings
from tests.security.helpers import CSRF, PASSWORD, login


@pytest.fixture
async def limited(database_url: str, clean_database: None) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = make_settings(
        database_url,
        login_per_ip=6,
        login_per_username=3,
        subscribe_email_per_ip=3,
        smtp_host="127.0.0.1",
        smtp_port=2525,
        email_from="status@example.com",
    )
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
        ):
            yield client, runtime
    finally:
        await (await runtime.queue.pool()).delete(settings.queue_name)
        await runtime.aclose()


async def attempt(client: httpx.AsyncClient, username: str, password: str = "wrong") -> httpx.Response:
    page = await client.get("/login")
    token = CSRF.search(page.text)
    assert token
    return await client.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)})


async def test_login_per_username_and_client(limited: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = limited
    await login(client, runtime, "alice", "admin")  # the right password: alice's count starts over
    await client.post("/logout", headers={"X-CSRF-Token": CSRF.search((await client.get("/login")).text).group(1)})  # type: ignore[union-attr]
    codes = [(await attempt(client, "alice")).status_code for _ in range(3)]
    assert codes == [401, 401, 401]  # the third wrong one starts a delay
    blocked = await attempt(client, "alice", PASSWORD)  # even the right password waits now (from this client)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert (await attempt(client, "bob")).status_code == 401  # another username is not blocked


async def test_login_per_ip(limited: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = limited
    codes: list[Any] = [(await attempt(client, f"user{n}")).status_code for n in range(7)]
    assert codes == [401] * 6 + [429]


async def test_subscribe_per_ip(limited: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = limited
    codes = [(await client.post("/subscribe", json={"email": f"p{n}@example.org"})).status_code for n in range(4)]
    assert codes[:3] == [202] * 3 and codes[3] == 429
