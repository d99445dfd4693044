"""Session login for people (console, desk), with roles and CSRF protection on every form.

The session is a signed cookie (Starlette's ``SessionMiddleware``) holding the user's id,
name, role and a CSRF token. Every cookie-authenticated POST must carry that token in a
``csrf_token`` form field or an ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from broadcaster.actors import Actor
from broadcaster.domain.audit import record as audit
from broadcaster.domain.users import check_login
from broadcaster.models import ROLE_RANK, Role
from broadcaster.ratelimit import Limit, LimiterUnavailable, RateLimiter
from status_page.http import HTTPError, runtime
from status_page.pages import render_page

log = logging.getLogger(__name__)

SESSION_USER = "user"
SESSION_CSRF = "csrf"


def current_user(request: Request) -> dict[str, Any] | None:
    user = request.session.get(SESSION_USER)
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
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            raise HTTPError(303, "login_required", "log in first",
                            headers={"Location": f"/login?next={quote(request.url.path)}"})
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
    return render_page(request, "console/login.html", next=_safe_next(request.query_params.get("next")),
                       error=None, csrf_token=csrf_token(request))


async def login_throttle(request: Request, username: str) -> int | None:
    """Count a login attempt per client IP and per username; seconds to wait when over a limit.

    When Redis is out of reach logins still work (during an incident the console matters
    more than the limit), and the lapse is logged.
    """
    rt = runtime(request)
    settings = rt.settings
    ip = request.client.host if request.client else "unknown"
    try:
        limiter = RateLimiter(await rt.queue.pool(), namespace=settings.queue_name)
        return await limiter.check([
            Limit(f"login:ip:{ip}", settings.login_per_ip, settings.login_window_s),
            Limit(f"login:user:{username.strip().lower()}", settings.login_per_username, settings.login_window_s),
        ])
    except (LimiterUnavailable, OSError, ConnectionError) as exc:
        log.warning("login rate limits not checked: %s", exc)
        return None
    except Exception as exc:  # redis-py's own hierarchy, from creating the pool
        if not exc.__class__.__module__.startswith("redis"):
            raise
        log.warning("login rate limits not checked: %s", exc)
        return None


async def login(request: Request) -> Response:
    await check_csrf(request)
    form = await request.form()
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    rt = runtime(request)
    wait_s = await login_throttle(request, username)
    if wait_s is not None:
        async with rt.engine.begin() as conn:
            await audit(conn, f"user:{username or 'anonymous'}", "login_throttled", target=username)
        response = render_page(request, "console/login.html", status_code=429, next=target,
                               error=f"Too many attempts. Try again in {wait_s} s.", csrf_token=csrf_token(request))
        response.headers["Retry-After"] = str(wait_s)
        return response
    async with rt.engine.begin() as conn:
        user = await check_login(conn, username, password)
        await audit(conn, f"user:{username or 'anonymous'}", "login" if user else "login_failed", target=username)
    if user is None:
        return render_page(request, "console/login.html", status_code=401, next=target,
                           error="Wrong username or password.", csrf_token=csrf_token(request))
    request.session.clear()
    request.session[SESSION_USER] = {"id": user["id"], "username": user["username"], "role": user["role"]}
    csrf_token(request)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    await check_csrf(request)
    user = current_user(request)
    if user is not None:
        async with runtime(request).engine.begin() as conn:
            await audit(conn, str(user_actor(user)), "logout")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
