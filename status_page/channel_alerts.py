"""The banner of failing pre-flight checks, on every console page and on the agent desk.

``ChannelAlertsMiddleware`` reads the channels whose last pre-flight check failed
(``broadcaster.delivery.preflight.failing``: one small query) when a logged-in user GETs a
console or desk page, and leaves them in the request's scope; ``channel_alerts(request)``
is what the page wrappers (``console._kit.page``, ``desk``) hand their templates, and
``console/_preflight_banner.html`` shows them. Pages render synchronously, so the read
happens here, before the route.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from broadcaster.delivery import preflight
from status_page.auth import SCOPE_USER

log = logging.getLogger(__name__)

SCOPE_KEY = "broadcaster.channel_alerts"
PAGES = ("/console", "/desk")
NOT_PAGES = ("/static/", "/events", ".json", "/fragment")  # assets, streams and fragments carry no banner


def _is_page(path: str) -> bool:
    return path.startswith(PAGES) and not any(part in path for part in NOT_PAGES)


class ChannelAlertsMiddleware:
    """Loads the failing pre-flight checks for console and desk pages; goes inside ``SessionUserMiddleware``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope.get(SCOPE_USER) and _is_page(scope["path"]):
            try:
                scope[SCOPE_KEY] = await preflight.failing(scope["app"].state.runtime)
            except SQLAlchemyError as exc:  # the page itself decides what a database outage means
                log.debug("pre-flight banner not loaded: %r", exc)
        await self.app(scope, receive, send)


def channel_alerts(request: Request) -> list[preflight.ChannelCheck]:
    """The channels failing their pre-flight check, for this page's banner (empty when not loaded)."""
    alerts = request.scope.get(SCOPE_KEY)
    return alerts if isinstance(alerts, list) else []
