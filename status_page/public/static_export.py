"""The status page as static files, for any web server or bucket: a mirror on other infrastructure.

Written: ``index.html``; ``incidents/<id>.html`` and ``incidents/<id>/index.html``;
``history.html``, ``history/index.html`` and ``history/<n>/index.html`` (+ ``history/<n>.html``);
``history.atom``, ``history.rss``, ``maintenance.ics``; ``api/v2/…json`` (the eight Statuspage paths); hashed
assets, the brand's included (stylesheet, logo, favicon). Links are root-relative, so serve
the directory at a site's root. Every file is written to a temporary name and renamed into
place, so a reader never sees half a file.
The pages are the app's own renderings with the live script switched off.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.config import Settings
from broadcaster.views.calendar import calendar
from broadcaster.views.public import all_incident_ids, load_history, load_incident, load_snapshot, recent_updates
from broadcaster.views.statuspage_v2 import ENDPOINTS
from status_page.public.html import (
    HISTORY_PER_PAGE,
    api_json,
    assets,
    feed,
    history_html,
    incident_html,
    index_html,
    not_found_html,
)


def write_atomic(path: Path, body: bytes) -> None:
    """Write ``body`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


async def export_site(settings: Settings, engine: AsyncEngine, directory: Path) -> int:
    """Export the whole page into ``directory``; returns the number of files written."""
    root = Path(directory)
    files: dict[str, bytes] = {}
    async with engine.connect() as conn:
        snapshot = await load_snapshot(conn, settings)
        files["index.html"] = index_html(settings, snapshot, live=False)
        for path in ENDPOINTS:
            files[f"api/v2/{path}"] = api_json(snapshot, path)
        entries = await recent_updates(conn)
        files["history.atom"] = feed(settings, snapshot.page, entries, "atom")
        files["history.rss"] = feed(settings, snapshot.page, entries, "rss")
        files["maintenance.ics"] = calendar(snapshot)
        number, pages = 1, 1
        while number <= pages:
            items, pages = await load_history(conn, number, HISTORY_PER_PAGE)
            body = history_html(settings, snapshot.page, items, number, pages, live=False)
            if number == 1:
                files["history.html"] = files["history/index.html"] = body
            else:
                files[f"history/{number}.html"] = files[f"history/{number}/index.html"] = body
            number += 1
        names = {c["id"]: c["name"] for c in snapshot.components}
        for incident_id in await all_incident_ids(conn):
            incident = await load_incident(conn, incident_id)
            if incident is None:
                continue
            body = incident_html(settings, snapshot.page, incident, names, live=False)
            files[f"incidents/{incident_id}.html"] = files[f"incidents/{incident_id}/index.html"] = body
    for asset in assets(settings.templates_dir).values():
        files[asset.url.lstrip("/")] = asset.body
    for url, (body, _) in snapshot.page["brand"].assets().items():
        files[url.lstrip("/")] = body
    files["404.html"] = not_found_html(settings)
    for relative, body in files.items():
        write_atomic(root / relative, body)
    return len(files)
