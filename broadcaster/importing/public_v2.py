"""A public Statuspage-style page (``/api/v2``), for a page you do not administer: no key, no subscribers.

``summary.json`` gives the page and its components, ``incidents.json`` the recent incidents
(Statuspage lists the last 50), ``scheduled-maintenances.json`` the maintenances. Ids are the
page's own, the same the v1 API uses, so a later ``--page-id`` import of the same page
updates these rather than adding them again. Any page serving these paths works, broadcaster's
own included.
"""

from __future__ import annotations

from broadcaster.importing.fetch import JsonSource, as_dict, as_list
from broadcaster.importing.model import Bundle
from broadcaster.importing.progress import Progress
from broadcaster.importing.statuspage import read_components, read_incident


async def fetch_public(source: JsonSource, progress: Progress) -> Bundle:
    """Read the page at ``source``'s base URL."""
    progress.begin("fetching components")
    summary = as_dict(await source.get("/api/v2/summary.json"))
    page = as_dict(summary.get("page"))
    components = as_list(summary.get("components"))
    progress.advance(len(components))
    progress.end()
    page_id = str(page.get("id") or source.base_url)
    bundle = Bundle(source=f"statuspage:{page_id}", label=f"the public page {source.base_url}")
    bundle.page_name = str(page.get("name") or "") or None
    bundle.components = read_components(components)
    progress.begin("fetching incidents")
    seen: set[str] = set()
    for path, key in (
        ("/api/v2/incidents.json", "incidents"),
        ("/api/v2/scheduled-maintenances.json", "scheduled_maintenances"),
    ):
        for item in as_list(as_dict(await source.get(path)).get(key)):
            source_id = str(as_dict(item).get("id") or "")
            if source_id in seen:
                continue
            seen.add(source_id)
            read_incident(item, bundle)
            progress.advance()
    progress.end()
    return bundle
