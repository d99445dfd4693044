"""``GET /maintenance.ics``: the maintenance calendar, from the page cache like the page and its feeds.

Calendar apps subscribe to it (webcal): each upcoming or active window is one event that an
edit replaces (same UID, higher SEQUENCE). The bytes are ``broadcaster/views/calendar.py``'s,
in the page's default language whoever asks first (one calendar for every subscriber).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from broadcaster import i18n
from broadcaster.runtime import Runtime
from broadcaster.views.calendar import CONTENT_TYPE, calendar
from status_page.api import v2 as api_v2
from status_page.public.page_cache import Entry, make_entry, page_cache, send_entry

PATH = "/maintenance.ics"


async def calendar_entry(app: Any) -> Entry:
    async def build() -> Entry:
        rt: Runtime = app.state.runtime
        snapshot = await api_v2.snapshot_of(app)
        with i18n.using(rt.settings.default_language):
            body = calendar(snapshot)
        return make_entry(body, CONTENT_TYPE, last_modified=snapshot.page["updated_at"])

    return await page_cache(app).get("calendar", build)


class CalendarEndpoint:
    """ASGI endpoint: the cached bytes, with ETag and gzip, no request object."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_entry(scope, send, await calendar_entry(scope["app"]))


routes = [Route(PATH, CalendarEndpoint(), methods=["GET", "HEAD"])]
