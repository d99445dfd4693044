"""The agent desk (``/desk``): what the contact centre says now, live, for role ``agent`` and above.

- ``GET /desk``: every active incident with its latest public update verbatim on top, then
  talking points, approved answers, what not to say, escalation and affected components;
  incidents resolved in the last 24 hours below.
- ``GET /desk/fragment``: the same desk without the page around it (what the script re-fetches).
- ``GET /desk/search?q=``: approved answers, talking points and public updates of current
  and recent incidents.
- ``GET /desk/events``: server-sent ``update`` / ``published`` events from the bus.
- ``GET /desk/static/{desk.js,desk.css}``: the page's script and styles (no inline script,
  so a strict Content-Security-Policy holds).

The rendered desk is the same for every agent reading it in the same language (the desk's
words follow the agent's browser; the updates are shown in every language they exist in),
so each process keeps one copy per language and drops them all on every live event
(``update`` when an update is posted, ``published`` when the worker has published it to
the desk through ``channels/desk.py``); ``install`` subscribes that cache to the bus at
startup.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcaster.domain import replies
from broadcaster.domain.contact_channels import load_channels, needs_banner
from broadcaster.i18n import current_language
from broadcaster.models import Role
from broadcaster.render import environment, markdown_to_html
from status_page.auth import csrf_token, require_role
from status_page.channel_alerts import channel_alerts
from status_page.desk_data import MAX_QUERY_CHARS, load_desk, search, translations_of
from status_page.http import HTTPError, runtime
from status_page.live import live_events, sse_response
from status_page.pages import render_page

DESK_EVENTS = ("update", "published", "replies", "page")  # page: the contact channels or the brand changed
CACHE_TTL_S = 10.0
STREAM_MAX_AGE_S = 600.0  # reconnecting re-checks the agent's session and role
STATIC_TYPES = {"desk.js": "text/javascript; charset=utf-8", "desk.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",  # agent material stays out of shared caches
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class DeskCache:
    """The rendered desk of this process, one per ``key`` (the language): each built at most once
    per ``ttl_s``, all dropped on every event."""

    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self.generation = 0
        self._html: dict[str, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    def invalidate(self, event: Any = None) -> None:
        self.generation += 1
        self._html = {}

    def _fresh(self, key: str) -> str | None:
        html, built_at = self._html.get(key, (None, 0.0))
        if html is not None and time.monotonic() - built_at < self.ttl_s:
            return html
        return None

    async def get(self, build: Callable[[], Awaitable[str]], key: str = "") -> str:
        cached = self._fresh(key)
        if cached is not None:
            return cached
        async with self._lock:  # a burst of agents re-fetching after an event builds it once
            cached = self._fresh(key)
            if cached is not None:
                return cached
            generation = self.generation
            html = await build()
            # Keep it only if no event arrived meanwhile: it may predate that event's update.
            if generation == self.generation:
                self._html[key] = (html, time.monotonic())
            return html


def desk_cache(app: Any) -> DeskCache:
    cache: DeskCache | None = getattr(app.state, "desk_cache", None)
    if cache is None:
        cache = DeskCache()
        app.state.desk_cache = cache
        live_events(app).add_listener(cache.invalidate)
    return cache


def _agent(request: Request) -> dict[str, Any]:
    return require_role(request, Role.AGENT)


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


async def _fragment(request: Request) -> str:
    rt = runtime(request)
    settings = rt.settings

    async def build() -> str:
        async with rt.engine.connect() as conn:
            desk = await load_desk(conn, settings.page_name, settings.public_url, settings.default_language)
            heard = await replies.listened(conn, [m.incident_id for m in [*desk.active, *desk.resolved]], shown=10)
            contact = await load_channels(conn)
        template = environment().get_template("desk/fragment.html")
        return template.render(
            desk=desk,
            listened=heard,
            md=markdown_to_html,
            translations_of=translations_of,
            page_name=settings.page_name,
            contact=contact,
            banner=needs_banner(contact),
        )

    # The middleware made the agent's language current: the build renders in it.
    return await desk_cache(request.app).get(build, key=current_language())


def _page(request: Request, template: str, user: dict[str, Any], **context: Any) -> Response:
    root = _static_root(request)
    static = {name: f"/desk/static/{name}?v={_static_file(root, name)[1]}" for name in STATIC_TYPES}
    response = render_page(
        request,
        template,
        user=user,
        static=static,
        csrf_token=csrf_token(request),
        md=markdown_to_html,
        channel_alerts=channel_alerts(request),
        **context,
    )
    return _secure(response)


async def desk_page(request: Request) -> Response:
    user = _agent(request)
    fragment = await _fragment(request)
    return _page(request, "desk/desk.html", user, fragment=Markup(fragment), query="")


async def desk_fragment(request: Request) -> Response:
    _agent(request)
    return _secure(Response(await _fragment(request), media_type="text/html; charset=utf-8"))


async def desk_search(request: Request) -> Response:
    user = _agent(request)
    query = (request.query_params.get("q") or "").strip()[:MAX_QUERY_CHARS]
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        settings = rt.settings
        result = await search(conn, query, settings.page_name, settings.public_url, settings.default_language)
    return _page(request, "desk/search.html", user, result=result, query=query)


async def desk_events(request: Request) -> Response:
    _agent(request)
    desk_cache(request.app)  # drop the cached desk on events even if no page was rendered yet
    return _secure(sse_response(request, DESK_EVENTS, max_age_s=STREAM_MAX_AGE_S))


def _static_root(request: Request) -> Path:
    root: Path = runtime(request).settings.templates_dir
    return root / "desk"


@lru_cache(maxsize=8)
def _read_static(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:16]


def _static_file(root: Path, name: str) -> tuple[bytes, str]:
    path = root / name
    try:
        return _read_static(path, path.stat().st_mtime_ns)
    except OSError:
        raise HTTPError(404, "not_found", f"no static file {name!r}") from None


async def desk_static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_TYPES:
        raise HTTPError(404, "not_found", f"no static file {name!r}")
    body, digest = _static_file(_static_root(request), name)
    headers = {"ETag": f'"{digest}"', "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == f'"{digest}"':
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=STATIC_TYPES[name], headers=headers)


def install(app: Any) -> None:
    """At startup, subscribe the desk's cache to the bus (which starts this process's listener)."""

    async def start(app: Any) -> None:
        desk_cache(app)

    app.state.startup_hooks.append(start)


routes = [
    Route("/desk", desk_page, methods=["GET"]),
    Route("/desk/fragment", desk_fragment, methods=["GET"]),
    Route("/desk/search", desk_search, methods=["GET"]),
    Route("/desk/events", desk_events, methods=["GET"]),
    Route("/desk/static/{name}", desk_static, methods=["GET"]),
]
