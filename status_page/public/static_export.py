"""``broadcaster export-static DIR``: the mirror's site written once into a directory.

The same objects the ``mirror`` channel pushes (``status_page.mirror.site``), laid out for a
directory (``incidents/<id>.html`` and ``incidents/<id>/index.html``, ``history.html`` and
``history/<n>/index.html``, feeds, ``api/v2/…json``, hashed assets, ``404.html``), every file
written through a temporary name and a rename. Links are relative, so the directory can be
served at any path. Nothing is remembered: the channel, not this command, keeps a copy current.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.config import Settings
from broadcaster.db import utcnow
from status_page.mirror.site import render_site
from status_page.mirror.targets import DirectoryTarget


async def export_site(settings: Settings, engine: AsyncEngine, directory: Path) -> int:
    """Export the whole page into ``directory``; returns the number of files written."""
    target = DirectoryTarget(Path(directory))
    objects = (await render_site(settings, engine)).objects(target.layout)
    now = utcnow()
    for key, item in objects.items():
        await target.put(key, item.stamped(now), item.content_type, item.cache_control)
    return len(objects)
