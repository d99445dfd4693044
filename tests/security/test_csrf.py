"""CSRF: every state-changing route behind the session cookie refuses a request without the token.

The routes are discovered from the app, so a form added later is covered without editing
this file. Routes authenticated otherwise are listed, with the reason, in ``NOT_SESSION``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.routing import Route

from broadcaster.runtime import Runtime
from tests.security.helpers import login

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
NOT_SESSION = {
    "/subscribe": "public sign-up, no session; rate limited",
    "/subscribe/confirm": "public, proven by the SMS code",
    "/unsubscribe": "RFC 8058 one-click: mail clients POST without a session; proven by the signed token",
    "/subscriptions/manage": "proven by the signed manage token in the link",
    "/webhooks/twilio/inbound": "proven by X-Twilio-Signature",
    "/webhooks/twilio/status": "proven by X-Twilio-Signature",
    "/ack": "a contact's acknowledgement, proven by the signed token in the message it got",
}
PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def sample_path(path: str) -> str:
    """The route's path with a value that its convertors accept (so the router matches it)."""
    return PARAM.sub(lambda m: {"int": "1", "float": "1"}.get(m.group(2) or "", "x0000000000x"), path)


def session_routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if not isinstance(route, Route) or route.path.startswith("/api/") or route.path in NOT_SESSION:
            continue
        for method in sorted((route.methods or set()) & UNSAFE):
            found.append((method, sample_path(route.path)))
    return found


async def test_every_session_form_needs_the_csrf_token(app: Any, client: httpx.AsyncClient, runtime: Runtime) -> None:
    routes = session_routes(app)
    assert ("POST", "/login") in routes and ("POST", "/logout") in routes
    assert len(routes) >= 5, routes  # the console's forms are there too
    await login(client, runtime)
    unprotected = []
    for method, path in routes:
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            response = await client.request(
                method,
                path,
                data={"title": "x", "csrf_token": "forged"} if headers else {"title": "x"},
                headers=headers,
                follow_redirects=False,
            )
            if response.status_code != 403:
                unprotected.append((method, path, bool(headers), response.status_code))
    assert unprotected == [], f"answered without a valid CSRF token: {unprotected}"


async def test_login_form_needs_the_csrf_token(client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await client.post("/login", data={"username": "a", "password": "b"})
    assert response.status_code == 403
