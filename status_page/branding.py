"""The page row (name, brand, contact channels) for pages rendered per request: subscribe and
preferences pages, the desk, the console and the login page.

It is the public snapshot's own ``page`` (``status_page.api.v2.snapshot_of``), read from the page
cache without waiting: the cache drops it on every ``page`` event and rebuilds it at once, and
each read here asks for a refresh in the background (a no-op while the snapshot is fresh), so
these pages show what the public page shows. A process that has not built a snapshot yet
answers with the unbranded page meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broadcaster.views.public import Row, page_info
from status_page.api import v2 as api_v2
from status_page.public.page_cache import page_cache


def _refresh(app: Any) -> None:
    tasks: set[asyncio.Task[Any]] | None = getattr(app.state, "branding_tasks", None)
    if tasks is None:
        tasks = app.state.branding_tasks = set()
    if tasks:
        return
    task = asyncio.get_running_loop().create_task(api_v2.snapshot_of(app))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # the cache logs a failed build


def current_page(app: Any) -> Row:
    """The page row of the latest snapshot (the plain page until there is one)."""
    _refresh(app)
    snapshot = page_cache(app).peek("snapshot")
    if snapshot is None:
        return page_info(app.state.settings, None)
    page: Row = snapshot.page
    return page
