"""Statuspage-compatible public JSON (``/api/v2/*.json``): same paths, field names and order.

Answers come from the page cache as ready bytes, with ETag, ``HEAD`` like ``GET`` and
``Access-Control-Allow-Origin: *`` so widgets on other origins can read them. Shapes live
in ``broadcaster/views/statuspage_v2.py``.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from broadcaster.runtime import Runtime
from broadcaster.views.public import Snapshot, load_snapshot
from broadcaster.views.statuspage_v2 import ENDPOINTS
from status_page.public.html import JSON, api_json
from status_page.public.page_cache import Entry, make_entry, page_cache, send_entry

CORS = (("Access-Control-Allow-Origin", "*"),)
PREFLIGHT_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-max-age", b"86400"),
    (b"content-length", b"0"),
]


async def snapshot_of(app: Any) -> Snapshot:
    """The current snapshot of the page (one database read per change, shared by every resource)."""
    rt: Runtime = app.state.runtime

    async def build() -> Snapshot:
        async with rt.engine.connect() as conn:
            return await load_snapshot(conn, rt.settings)

    return await page_cache(app).get("snapshot", build, wait_if_old=True)


def api_key(path: str) -> str:
    """The page cache's key for ``/api/v2/<path>``."""
    return f"api:{path}"


async def api_entry(app: Any, path: str) -> Entry:
    """The cached answer for ``/api/v2/<path>``."""

    async def build() -> Entry:
        snapshot = await snapshot_of(app)
        return make_entry(api_json(snapshot, path), JSON, last_modified=snapshot.page["updated_at"], extra=CORS)

    return await page_cache(app).get(api_key(path), build)


class ApiEndpoint:
    """ASGI endpoint for one v2 path: no request object, just cached bytes."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": PREFLIGHT_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
        await send_entry(scope, send, await api_entry(scope["app"], self.path))


routes = [Route(f"/api/v2/{path}", ApiEndpoint(path), methods=["GET", "HEAD", "OPTIONS"]) for path in ENDPOINTS]
