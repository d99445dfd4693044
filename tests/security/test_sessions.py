"""Sessions end on the server: the cookie holds the user's session epoch, checked against the database
on every request; logout, a password change and disabling bump it. The role is read from the
database, never from the cookie."""

from __future__ import annotations

import asyncio
import json
from base64 import b64decode, b64encode
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import event, update

from broadcaster.config import Settings
from broadcaster.db import users
from broadcaster.domain.users import get_user
from broadcaster.runtime import Runtime
from tests.security.helpers import CSRF, PASSWORD, login

PAGE = {"Accept": "text/html"}
NEW_PASSWORD = "a different long password"


@pytest.fixture
async def other(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser on the same app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as c:
        yield c


def copy_of(client: httpx.AsyncClient, app: Any) -> httpx.AsyncClient:
    """A client holding a copy of ``client``'s cookies (a cookie captured from the browser)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://status.test", cookies=dict(client.cookies)
    )


async def csrf(client: httpx.AsyncClient) -> str:
    token = CSRF.search((await client.get("/console/users", headers=PAGE)).text) or CSRF.search(
        (await client.get("/login")).text
    )
    assert token
    return token.group(1)


async def user_id(runtime: Runtime, username: str) -> str:
    async with runtime.engine.connect() as conn:
        user = await get_user(conn, username)
    assert user is not None
    return str(user["id"])


def session_in(response: httpx.Response) -> dict[str, Any] | None:
    """The session a response's ``Set-Cookie`` writes (``None`` when it writes none)."""
    cookie = response.cookies.get("broadcaster_session")
    if cookie is None:
        return None
    data: dict[str, Any] = json.loads(b64decode(cookie.split(".", 1)[0]))
    return data


async def assert_logged_out(client: httpx.AsyncClient, path: str = "/console/users") -> None:
    page = await client.get(path, headers=PAGE)
    assert page.status_code == 303 and page.headers["location"] == f"/login?next={path}", page.text[:300]
    assert "user" not in (session_in(page) or {}), "the stale cookie is rewritten without its user"
    api = await client.get(path)  # not a page: JSON
    assert api.status_code == 401 and api.json()["error"]["code"] == "login_required"


async def test_a_cookie_captured_before_logout_is_logged_out(
    app: Any, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await login(client, runtime, "alice", "admin")
    async with copy_of(client, app) as captured:
        assert (await captured.get("/console/users", headers=PAGE)).status_code == 200  # the copy works...
        logout = await client.post("/logout", headers={"X-CSRF-Token": await csrf(client)})
        assert logout.status_code == 303
        await assert_logged_out(captured)  # ...until the logout


async def test_logout_ends_every_session_of_the_user(
    app: Any, client: httpx.AsyncClient, other: httpx.AsyncClient, runtime: Runtime
) -> None:
    await login(client, runtime, "alice", "admin")
    token = CSRF.search((await other.get("/login")).text)
    assert token
    await other.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token.group(1)})
    assert (await other.get("/console/users", headers=PAGE)).status_code == 200
    await client.post("/logout", headers={"X-CSRF-Token": await csrf(client)})
    await assert_logged_out(other)


async def test_a_demoted_users_next_request_has_the_new_role(
    app: Any, client: httpx.AsyncClient, other: httpx.AsyncClient, runtime: Runtime
) -> None:
    await login(client, runtime, "boss", "admin")
    await login(other, runtime, "alice", "admin")
    assert (await other.get("/console/users", headers=PAGE)).status_code == 200
    alice = await user_id(runtime, "alice")
    # The role comes from the database on every request: a change there applies to the next one.
    async with runtime.engine.begin() as conn:
        await conn.execute(update(users).where(users.c.id == alice).values(role="viewer"))
    refused = await other.get("/console/users", headers=PAGE)
    assert refused.status_code == 403 and "admin role" in refused.text
    assert (await other.get("/console", headers=PAGE)).status_code == 200  # still a viewer
    # The console's role change: her very next request has the new role, no new login needed.
    changed = await client.post(
        f"/console/users/{alice}/role", data={"role": "commander", "csrf_token": await csrf(client)}
    )
    assert changed.status_code == 303
    assert (await other.get("/console/users", headers=PAGE)).status_code == 403
    dashboard = await other.get("/console", headers=PAGE)
    assert dashboard.status_code == 200 and "/console/compose" in dashboard.text  # a commander may post again
    async with runtime.engine.connect() as conn:
        assert (await get_user(conn, "alice"))["role"] == "commander"  # type: ignore[index]


async def test_a_password_change_ends_the_users_sessions(
    client: httpx.AsyncClient, other: httpx.AsyncClient, runtime: Runtime
) -> None:
    await login(client, runtime, "boss", "admin")
    await login(other, runtime, "alice", "commander")
    alice = await user_id(runtime, "alice")
    short = await client.post(
        f"/console/users/{alice}/password", data={"password": "short", "csrf_token": await csrf(client)}
    )
    assert short.status_code == 422 and "password" in short.json()["error"]["fields"]
    assert (await other.get("/console", headers=PAGE)).status_code == 200  # a refused change ends nothing
    changed = await client.post(
        f"/console/users/{alice}/password", data={"password": NEW_PASSWORD, "csrf_token": await csrf(client)}
    )
    assert changed.status_code == 303
    await assert_logged_out(other, "/console")
    token = CSRF.search((await other.get("/login")).text)
    assert token
    old = await other.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token.group(1)})
    assert old.status_code == 401
    new = await other.post("/login", data={"username": "alice", "password": NEW_PASSWORD, "csrf_token": token.group(1)})
    assert new.status_code == 303


async def test_a_disabled_user_is_logged_out_and_cannot_log_in(
    client: httpx.AsyncClient, other: httpx.AsyncClient, runtime: Runtime
) -> None:
    await login(client, runtime, "boss", "admin")
    await login(other, runtime, "alice", "commander")
    alice, boss = await user_id(runtime, "alice"), await user_id(runtime, "boss")
    myself = await client.post(f"/console/users/{boss}/disable", data={"csrf_token": await csrf(client)})
    assert myself.status_code == 422
    assert (
        await client.post(f"/console/users/{alice}/disable", data={"csrf_token": await csrf(client)})
    ).status_code == 303
    await assert_logged_out(other, "/console")
    token = CSRF.search((await other.get("/login")).text)
    assert token
    form = {"username": "alice", "password": PASSWORD, "csrf_token": token.group(1)}
    assert (await other.post("/login", data=form)).status_code == 401
    assert (
        await client.post(f"/console/users/{alice}/enable", data={"csrf_token": await csrf(client)})
    ).status_code == 303
    assert (await other.post("/login", data=form)).status_code == 303


async def test_the_role_in_an_old_style_cookie_is_not_believed(app: Any, settings: Settings, runtime: Runtime) -> None:
    """A cookie without the epoch (as every cookie was before), even validly signed, holds no session."""
    await login(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test"),
        runtime,
        "viewer1",
        "viewer",
    )
    forged = {"user": {"id": await user_id(runtime, "viewer1"), "username": "viewer1", "role": "admin"}}
    signer = TimestampSigner(settings.secret_key.get_secret_value())
    cookie = signer.sign(b64encode(json.dumps(forged).encode())).decode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://status.test", cookies={"broadcaster_session": cookie}
    ) as c:
        await assert_logged_out(c)


async def test_the_check_is_one_primary_key_read(client: httpx.AsyncClient, runtime: Runtime, app: Any) -> None:
    await login(client, runtime, "alice", "commander")
    # The login page asked for the page's brand in the background (status_page.branding); once
    # that snapshot is built, it is fresh for the cache's TTL and a page render reads nothing.
    await asyncio.gather(*getattr(app.state, "branding_tasks", ()))
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert (await client.get("/login")).status_code == 200  # a page that reads nothing else
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == 1, statements
    assert "FROM users" in statements[0] and "WHERE users.id = " in statements[0]
