"""The public status page: HTML pages, Atom/RSS feeds, hashed assets and live events (``/events``).

Pages are served from the page cache as ready bytes. Each web process listens to the bus
(through ``status_page.live``): an ``update`` or ``published`` event drops the cache, warms
the front page and JSON again, and tells open pages, which re-fetch themselves (progressive
enhancement: without JavaScript the page is complete, it just does not move). The static
mirror is not written here: the worker pushes it, once per change (``status_page.mirror``).

Each HTML page is cached per language (``page:/:fr``) and says so (``Content-Language``,
``Vary: Accept-Language, Cookie``, its own ETag). ``status_page.public.fast_path`` answers
the front page before ``LanguageMiddleware`` runs, so it picks the reader's language itself.
Feeds, JSON and the calendar have one language, the default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from broadcaster.domain.incidents import STATUS_PAGE
from broadcaster.runtime import Runtime
from broadcaster.views.public import load_history, load_incident, recent_updates
from status_page.api import v2 as api_v2
from status_page.languages import reader_language
from status_page.live import live_events, sse_response
from status_page.public.html import (
    ASSET_CACHE_CONTROL,
    ATOM,
    HISTORY_PER_PAGE,
    HTML,
    RSS,
    assets,
    feed,
    history_html,
    incident_html,
    index_html,
    not_found_html,
)
from status_page.public.page_cache import (
    INVALIDATING_EVENTS,
    PAGE_VARY,
    Entry,
    Missing,
    make_entry,
    page_cache,
    send_entry,
)

log = logging.getLogger(__name__)

MAX_HISTORY_PAGE = 100_000
_ID = re.compile(r"^[a-z0-9]{1,32}$")
LIVE_KINDS = ("update", "published", "page")  # page: the brand or the contact channels changed


class NotFoundPage(Missing):
    pass


def _rt(app: Any) -> Runtime:
    rt: Runtime = app.state.runtime
    return rt


def _language(app: Any, language: str | None) -> str:
    return language or _rt(app).settings.default_language


def _html_entry(body: bytes, language: str, **kwargs: Any) -> Entry:
    return make_entry(body, HTML, vary=PAGE_VARY, extra=(("Content-Language", language),), **kwargs)


def not_found_entry(app: Any, language: str | None = None) -> Entry:
    language = _language(app, language)
    cached: dict[str, Entry] | None = getattr(app.state, "not_found_entries", None)
    if cached is None:
        cached = app.state.not_found_entries = {}
    entry = cached.get(language)
    if entry is None:
        body = not_found_html(_rt(app).settings, language)
        entry = cached[language] = _html_entry(body, language, status=404, cache_control="public, max-age=60")
    return entry


def index_key(language: str) -> str:
    """The page cache's key for the front page in ``language``."""
    return f"page:/:{language}"


def feed_key(kind: str) -> str:
    """The page cache's key for the ``atom`` or ``rss`` feed."""
    return f"feed:{kind}"


async def index_entry(app: Any, language: str | None = None) -> Entry:
    """The front page in ``language`` (default: the page's default language)."""
    language = _language(app, language)

    async def build() -> Entry:
        settings = _rt(app).settings
        snapshot = await api_v2.snapshot_of(app)
        body = index_html(settings, snapshot, language=language, languages=settings.languages)
        return _html_entry(body, language, last_modified=snapshot.page["updated_at"])

    return await page_cache(app).get(index_key(language), build)


async def incident_entry(app: Any, incident_id: str, language: str | None = None) -> Entry:
    if not _ID.match(incident_id):
        raise NotFoundPage
    language = _language(app, language)

    async def build() -> Entry:
        rt = _rt(app)
        snapshot = await api_v2.snapshot_of(app)
        async with rt.engine.connect() as conn:
            incident = await load_incident(conn, incident_id)
        if incident is None:
            raise NotFoundPage
        names = {c["id"]: c["name"] for c in snapshot.components}
        body = incident_html(
            rt.settings, snapshot.page, incident, names, language=language, languages=rt.settings.languages
        )
        return _html_entry(body, language, last_modified=incident.row["updated_at"])

    return await page_cache(app).get(f"incident:{incident_id}:{language}", build)


async def history_entry(app: Any, number: int, language: str | None = None) -> Entry:
    language = _language(app, language)

    async def build() -> Entry:
        rt = _rt(app)
        snapshot = await api_v2.snapshot_of(app)
        async with rt.engine.connect() as conn:
            items, pages = await load_history(conn, number, HISTORY_PER_PAGE)
        if number > pages:
            raise NotFoundPage
        body = history_html(
            rt.settings, snapshot.page, items, number, pages, language=language, languages=rt.settings.languages
        )
        return _html_entry(body, language, last_modified=snapshot.page["updated_at"])

    return await page_cache(app).get(f"history:{number}:{language}", build)


async def feed_entry(app: Any, kind: str) -> Entry:
    async def build() -> Entry:
        rt = _rt(app)
        snapshot = await api_v2.snapshot_of(app)
        async with rt.engine.connect() as conn:
            entries = await recent_updates(conn)
        return make_entry(
            feed(rt.settings, snapshot.page, entries, kind),
            ATOM if kind == "atom" else RSS,
            last_modified=snapshot.page["updated_at"],
        )

    return await page_cache(app).get(feed_key(kind), build)


def _history_number(scope: Scope) -> int:
    raw = scope.get("path_params", {}).get("number")
    if raw is None:
        # /history?page=N also works; garbage means the first page.
        for part in scope.get("query_string", b"").split(b"&"):
            name, _, value = part.partition(b"=")
            if name == b"page":
                raw = value.decode("latin-1")
    try:
        number = int(raw) if raw is not None else 1
    except ValueError:
        number = 1
    if number > MAX_HISTORY_PAGE:
        raise NotFoundPage
    return max(1, number)


class PageEndpoint:
    """ASGI endpoint answering one kind of public page from the cache."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        # LanguageMiddleware chose it (and sets the cookie ?lang= asks for).
        language = scope.get("state", {}).get("language") or reader_language(scope, _rt(app).settings)[0]
        try:
            if self.kind == "index":
                entry = await index_entry(app, language)
            elif self.kind == "incident":
                entry = await incident_entry(app, str(scope["path_params"]["incident_id"]), language)
            elif self.kind == "history":
                entry = await history_entry(app, _history_number(scope), language)
            elif self.kind in ("atom", "rss"):
                entry = await feed_entry(app, self.kind)
            else:
                entry = await asset_entry(app, scope["path"])
        except NotFoundPage:
            entry = not_found_entry(app, language)
        await send_entry(scope, send, entry)


async def asset_entry(app: Any, path: str) -> Entry:
    """A hashed asset: the page's own, or one the brand adds (its stylesheet, logo, favicon)."""
    asset = assets(_rt(app).settings.templates_dir).get(path)
    if asset is not None:
        body, content_type = asset.body, asset.content_type
    else:
        found = (await api_v2.snapshot_of(app)).page["brand"].assets().get(path)
        if found is None:
            raise NotFoundPage
        body, content_type = found

    async def build() -> Entry:
        return make_entry(body, content_type, cache_control=ASSET_CACHE_CONTROL)

    return await page_cache(app).get(f"asset:{path}", build)


def public_event(event: dict[str, Any]) -> bool:
    """Whether the public stream may carry ``event``: never a drill, an update left off the page,
    or another channel's announcement (the desk's ``published`` is for agents)."""
    if event.get("drill") or event.get("public") is False:
        return False
    return event.get("kind") != "published" or event.get("channel", STATUS_PAGE) == STATUS_PAGE


async def events(request: Request) -> Response:
    """Server-sent events: ``update``, ``published`` and ``page`` whenever the public page changes."""
    return sse_response(request, LIVE_KINDS, accept=public_event)


# --- keeping every process's cache current ------------------------------------------------------


def _on_event(app: Any, event: dict[str, Any]) -> None:
    if event.get("kind") not in INVALIDATING_EVENTS:
        return
    page_cache(app).invalidate()
    _spawn(app, _warm(app))


def _spawn(app: Any, coro: Any) -> None:
    tasks: set[asyncio.Task[Any]] = app.state.public_tasks
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _warm(app: Any) -> None:
    """Rebuild the hot resources now, so that readers (and re-fetching pages) rarely wait; the front
    page in the default language only (another language builds on its first request)."""
    try:
        await asyncio.gather(index_entry(app), api_v2.api_entry(app, "summary.json"))
    except Exception as exc:
        log.warning("warming the page cache failed: %s", exc)


def install(app: Any) -> None:
    """Subscribe this process's cache to the bus when the app starts; stop background work on exit."""
    app.state.public_tasks = set()

    async def start(app: Any) -> None:
        live_events(app).add_listener(lambda event: _on_event(app, event))

    async def stop(app: Any) -> None:
        for task in list(app.state.public_tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await page_cache(app).aclose()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)


GET = ["GET", "HEAD"]
routes = [
    Route("/", PageEndpoint("index"), methods=GET),
    Route("/incidents/{incident_id}", PageEndpoint("incident"), methods=GET),
    Route("/history", PageEndpoint("history"), methods=GET),
    Route("/history/{number}", PageEndpoint("history"), methods=GET),
    Route("/history.atom", PageEndpoint("atom"), methods=GET),
    Route("/history.rss", PageEndpoint("rss"), methods=GET),
    Route("/assets/{name}", PageEndpoint("asset"), methods=GET),
    Route("/events", events, methods=["GET"]),
]
