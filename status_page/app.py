"""The app factory: one Starlette app serving the page, the APIs, the console and the desk."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from broadcaster.config import Settings, get_settings
from broadcaster.errors import InputError
from broadcaster.runtime import Runtime
from status_page import auth, console, desk, metrics
from status_page.api import alerts as api_alerts
from status_page.api import audit as api_audit
from status_page.api import channel_health, maintenance, openapi, ops, tokens, twilio, v1, v2
from status_page.api import page as api_page
from status_page.api import playbooks as api_playbooks
from status_page.api import subscribers_csv as api_subscribers_csv
from status_page.body_limit import BodyLimitMiddleware
from status_page.channel_alerts import ChannelAlertsMiddleware
from status_page.client_address import ClientAddressMiddleware
from status_page.console import page_settings as console_page
from status_page.console import playbooks as console_playbooks
from status_page.console import subscribers_io as console_subscribers
from status_page.http import HTTPError, handle_http_error, handle_input_error, handle_starlette_error
from status_page.languages import LanguageMiddleware
from status_page.live import end_streams_on_signal, live_events
from status_page.nul_guard import NulGuardMiddleware
from status_page.public import calendar, preferences, subscribe
from status_page.public import pages as public_pages
from status_page.public.fast_path import FastPath
from status_page.rsgi import RSGIServing
from status_page.security_headers import SecurityHeadersMiddleware


async def healthz(request: Request) -> Response:
    """200 when the database takes a write; Redis is reported but does not fail the check.

    The probe inserts a row into ``alembic_version`` (every migrated database has it) and rolls
    it back, so a read-only database (SQLite ``?mode=ro``, a PostgreSQL standby or
    ``default_transaction_read_only``) answers 503. The answer never carries the database's
    own error text (it can name hosts, users and paths); the log does.
    """
    rt: Runtime = request.app.state.runtime
    import secrets

    from sqlalchemy import text

    try:
        async with rt.engine.connect() as conn, conn.begin() as transaction:
            await conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:probe)"),
                {"probe": f"healthz-{secrets.token_hex(8)}"},
            )
            await transaction.rollback()
    except Exception as exc:  # the check exists to report exactly this
        logging.getLogger(__name__).warning("health check: the database does not take a write: %s", exc)
        return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
    depth = await rt.queue.depth()
    return JSONResponse(
        {"status": "ok", "database": "ok", "redis": "ok" if depth is not None else "unreachable", "queue_depth": depth}
    )


def route_modules() -> list[Any]:
    """Every module (or package) that contributes ``routes``, in matching order."""
    return [
        public_pages,
        calendar,
        v2,
        v1,
        api_subscribers_csv,
        api_page,
        maintenance,
        ops,
        api_playbooks,
        api_alerts,
        api_audit,
        channel_health,
        tokens,
        auth,
        console,
        desk,
        subscribe,
        preferences,
        twilio,
        metrics,
        openapi,
    ]


class StatusPageApp(Starlette):
    """The app, with the cached hot GETs (``FastPath``) answered before the middleware
    stack: under a crowd, they cost what a bare ASGI app returning bytes costs."""

    fast_path: FastPath | None = None
    _rsgi: RSGIServing | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and await fast.answer(scope, send):
            return
        await super().__call__(scope, receive, send)

    def rsgi(self) -> RSGIServing:
        """This app over granian's RSGI interface (``status_page.rsgi``): granian looks up
        ``__rsgi__``, ``__rsgi_init__`` and ``__rsgi_del__`` once, when its worker starts."""
        if self._rsgi is None:
            self._rsgi = RSGIServing(self, lambda: self.fast_path, lambda: self.router.lifespan_context(self))
        return self._rsgi

    @property
    def __rsgi__(self) -> Callable[[Any, Any], Awaitable[None]]:
        return self.rsgi().__call__

    @property
    def __rsgi_init__(self) -> Callable[[asyncio.AbstractEventLoop], None]:
        return self.rsgi().init

    @property
    def __rsgi_del__(self) -> Callable[[asyncio.AbstractEventLoop], None]:
        return self.rsgi().close


def create_served_app() -> Starlette:
    """The app as ``broadcaster serve`` runs it: one per process, its start-up heap frozen."""
    return create_app(freeze_heap=True)


def create_app(
    settings: Settings | None = None, runtime: Runtime | None = None, *, freeze_heap: bool = False
) -> Starlette:
    """Build the app for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.runtime = runtime or Runtime.build(settings)
        app.state.settings = settings
        for hook in app.state.startup_hooks:
            await hook(app)
        if freeze_heap:
            # What start-up built lives as long as the process: out of the collector's sight, a
            # full collection under load walks only what requests made (a shorter pause in the tail).
            gc.collect()
            gc.freeze()
        hub = live_events(app)  # one event-stream reader per process, for every page's live stream
        try:
            with end_streams_on_signal(hub):  # servers wait for open responses: streams must end first
                yield
        finally:
            hub.end_streams()
            for hook in app.state.shutdown_hooks:
                await hook(app)
            if runtime is None:
                await app.state.runtime.aclose()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
    for module in route_modules():
        routes.extend(module.routes)
    app = StatusPageApp(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(ClientAddressMiddleware, trusted=settings.trusted_proxies or ()),  # before anyone reads it
            Middleware(LanguageMiddleware, settings=settings),  # the reader's language, for every template
            Middleware(metrics.MetricsMiddleware),
            Middleware(SecurityHeadersMiddleware, settings=settings),
            Middleware(NulGuardMiddleware),  # a NUL in the path (404) or query (400) before any lookup
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.max_body_bytes,
                uploads={  # the file, plus the form
                    **dict.fromkeys(api_alerts.ALERT_PATHS, api_alerts.ALERT_BODY_MAX_BYTES),  # grouped alerts
                    "/console/playbooks/import": console_playbooks.MAX_UPLOAD_BYTES + settings.max_body_bytes,
                    console_subscribers.IMPORT_PATH: console_subscribers.MAX_UPLOAD_BYTES + settings.max_body_bytes,
                    "/api/v1/page": api_page.PAGE_BODY_MAX_BYTES,  # logo, favicon and CSS inline
                    console_page.BRAND_PATH: console_page.UPLOAD_MAX_BYTES,
                },
            ),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key.get_secret_value(),
                session_cookie="broadcaster_session",
                same_site="lax",
                https_only=settings.public_url.startswith("https://"),
                max_age=12 * 3600,
            ),
            Middleware(auth.SessionUserMiddleware),  # the session's user checked against the database
            Middleware(ChannelAlertsMiddleware),  # failing pre-flight checks, for console and desk banners
        ],
        exception_handlers={
            HTTPError: handle_http_error,
            InputError: handle_input_error,
            HTTPException: handle_starlette_error,
        },
    )
    app.state.settings = settings
    app.fast_path = FastPath(app, settings)
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    for module in route_modules():
        if hasattr(module, "install"):  # a module that needs startup/shutdown hooks adds them here
            module.install(app)
    return app
