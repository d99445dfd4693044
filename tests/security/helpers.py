"""Shared helpers of the security tests: a logged-in session."""

from __future__ import annotations

import re

import httpx

from broadcaster.domain.users import create_user
from broadcaster.runtime import Runtime

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


async def login(client: httpx.AsyncClient, runtime: Runtime, username: str = "admin", role: str = "admin") -> None:
    """Create ``username`` and log in through the form; the client keeps the session cookie."""
    async with runtime.engine.begin() as conn:
        await create_user(conn, username, PASSWORD, role)
    page = await client.get("/login")
    token = CSRF.search(page.text)
    assert token, page.text[:500]
    response = await client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1), "next": "/console"}
    )
    assert response.status_code == 303, response.text[:500]
