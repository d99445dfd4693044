"""Session login for people (console, desk), with roles and CSRF protection on every form.

The session is a signed cookie (Starlette's ``SessionMiddleware``) holding the user's id, their
session epoch at login and a CSRF token. ``SessionUserMiddleware`` reads the user's row on every
request that carries a session user (one primary-key read): name and role come from the database,
and a cookie whose epoch is no longer the user's (logout, role or password change, disabling) or
whose user is disabled is logged out. Every cookie-authenticated POST must carry the CSRF token in
a ``csrf_token`` form field or an ``X-CSRF-Token`` header.

Login attempts are limited per client (a fixed window) and per (username, client) with a growing
delay (``RateLimiter.backoff``). There is no limit per username alone: anyone could use it to lock
the real user out during an incident, and guessing across many clients still meets argon2 and the
per-client limits.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from broadcaster.actors import Actor
from broadcaster.domain.audit import record as audit
from broadcaster.domain.users import check_login, check_username, end_sessions, session_user
from broadcaster.errors import InputError
from broadcaster.i18n import gettext
from broadcaster.models import ROLE_RANK, Role
from broadcaster.ratelimit import LimiterUnavailable, RateLimiter, Verdict, client_bucket, digest
from broadcaster.runtime import Runtime
from status_page.http import HTTPError, runtime
from status_page.pages import render_page

log = logging.getLogger(__name__)

SESSION_USER = "user"
SESSION_CSRF = "csrf"
SCOPE_USER = "broadcaster.user"  # the checked session user, set by SessionUserMiddleware


class SessionUserMiddleware:
    """Checks the session's user against the database on every request; goes inside ``SessionMiddleware``.

    The request then sees the user as the database has them (``current_user``), or no user when the
    cookie is stale: its user is dropped from the session, so the browser's cookie is logged out too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope.get("session") if scope["type"] in ("http", "websocket") else None
        if isinstance(session, dict) and SESSION_USER in session:
            scope[SCOPE_USER] = await _checked_user(scope["app"].state.runtime, session)
        await self.app(scope, receive, send)


async def _checked_user(rt: Runtime, session: dict[str, Any]) -> dict[str, Any] | None:
    stored = session.get(SESSION_USER)
    user_id = stored.get("id") if isinstance(stored, dict) else None
    epoch = stored.get("epoch") if isinstance(stored, dict) else None
    row = None
    if isinstance(user_id, str) and isinstance(epoch, int):
        async with rt.engine.connect() as conn:
            row = await session_user(conn, user_id)
    if row is None or row["disabled_at"] is not None or row["session_epoch"] != epoch:
        session.pop(SESSION_USER, None)
        return None
    return {"id": row["id"], "username": row["username"], "role": row["role"]}


def current_user(request: Request) -> dict[str, Any] | None:
    """The logged-in user (id, username, role as the database has them now), or ``None``."""
    user = request.scope.get(SCOPE_USER)
    return user if isinstance(user, dict) else None


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); put it in every form."""
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


async def check_csrf(request: Request) -> None:
    """403 unless the request carries the session's CSRF token (form field or header)."""
    expected = request.session.get(SESSION_CSRF)
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not sent or not secrets.compare_digest(expected, sent):
        raise HTTPError(403, "csrf", "missing or invalid CSRF token; reload the page and try again")


def require_role(request: Request, minimum: Role) -> dict[str, Any]:
    """The logged-in user when their role is at least ``minimum``; 401 (redirect for pages) or 403."""
    user = current_user(request)
    if user is None:
        if "text/html" in request.headers.get("accept", ""):  # a page (or a page's form): to the login form
            location = f"/login?next={quote(request.url.path)}" if request.method == "GET" else "/login"
            raise HTTPError(303, "login_required", "log in first", headers={"Location": location})
        raise HTTPError(401, "login_required", "log in first")
    role = user.get("role")
    if role not in {r.value for r in Role} or ROLE_RANK[Role(role)] < ROLE_RANK[minimum]:
        raise HTTPError(403, "forbidden", f"this needs the {minimum.value} role or above")
    return user


def user_actor(user: dict[str, Any]) -> Actor:
    """The audit actor of a console user (``user:NAME``), scoped by id for idempotency."""
    return Actor.user(str(user["username"]), str(user["id"]) if user.get("id") else None)


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/console"


async def login_page(request: Request) -> Response:
    return render_page(
        request,
        "console/login.html",
        next=_safe_next(request.query_params.get("next")),
        error=None,
        csrf_token=csrf_token(request),
    )


class _Throttle:
    """The login limits of one attempt's client; Redis out of reach means no limit, logged."""

    def __init__(self, request: Request, username: str) -> None:
        self.rt = runtime(request)
        self.client = client_bucket(request.client.host if request.client else None)
        self.user_key = f"login:user:{digest(username.strip().lower())}:{self.client}"

    async def _limiter(self) -> RateLimiter:
        return RateLimiter(await self.rt.queue.pool(), namespace=self.rt.settings.queue_name)

    async def attempt(self) -> tuple[Verdict, str]:
        """Count the attempt per client, then per (username, client); the verdict and the limit it is from."""
        settings = self.rt.settings
        try:
            limiter = await self._limiter()
            verdict = await limiter.count(f"login:client:{self.client}", settings.login_per_ip, settings.login_window_s)
            if verdict.wait_s is not None:
                return verdict, "client"
            return await limiter.backoff(self.user_key, settings.login_per_username, settings.login_window_s), "user"
        except Exception as exc:
            _unchecked(exc)
            return Verdict(), "none"

    async def succeeded(self) -> None:
        """The right password from this client: its delay for this username starts over."""
        try:
            await (await self._limiter()).forget(self.user_key)
        except Exception as exc:
            _unchecked(exc)


def _unchecked(exc: Exception) -> None:
    # During an incident the console matters more than the limit; redis-py raises its own
    # hierarchy (also from creating the pool), so anything else is a bug and propagates.
    if not isinstance(exc, LimiterUnavailable | OSError | ConnectionError) and not exc.__class__.__module__.startswith(
        "redis"
    ):
        raise exc
    log.warning("login rate limits not checked: %s", exc)


def _login_form(request: Request, status_code: int, target: str, error: str) -> Response:
    return render_page(
        request, "console/login.html", status_code=status_code, next=target, error=error, csrf_token=csrf_token(request)
    )


async def login(request: Request) -> Response:
    await check_csrf(request)
    form = await request.form()
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    try:
        check_username(username)  # before any key or audit row is made of it
    except InputError as exc:
        return _login_form(request, 422, target, gettext("Username: %(reason)s.", reason=exc.fields["username"]))
    rt = runtime(request)
    throttle = _Throttle(request, username)
    verdict, limit = await throttle.attempt()
    actor = f"user:{username or 'anonymous'}"
    if verdict.tripped:  # one row per lockout, none per refused attempt
        async with rt.engine.begin() as conn:
            await audit(conn, actor, "login_throttled", target=username, limit=limit, client=throttle.client)
    if verdict.wait_s is not None:
        wait = gettext("Too many attempts. Try again in %(seconds)s s.", seconds=verdict.wait_s)
        response = _login_form(request, 429, target, wait)
        response.headers["Retry-After"] = str(verdict.wait_s)
        return response
    async with rt.engine.begin() as conn:
        user = await check_login(conn, username, password)
        await audit(conn, actor, "login" if user else "login_failed", target=username)
    if user is None:
        return _login_form(request, 401, target, gettext("Wrong username or password."))
    await throttle.succeeded()
    request.session.clear()
    request.session[SESSION_USER] = {"id": user["id"], "epoch": user["session_epoch"]}
    csrf_token(request)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    """Log out, ending every session of the user (a copied cookie included)."""
    await check_csrf(request)
    user = current_user(request)
    if user is not None:
        async with runtime(request).engine.begin() as conn:
            await end_sessions(conn, str(user["id"]))
            await audit(conn, str(user_actor(user)), "logout")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
