"""Cachet 3.x: its JSON:API resources (``/api``, ``Authorization: Bearer``) flattened into 2.x's shapes.

Each resource is ``{id, type, attributes, relationships}`` with related resources in
``included`` (asked for with ``?include=``); times are ``{"human", "string"}`` and statuses
``{"human", "value"}``; lists page with ``links.next``. Group membership comes from the groups
(``component-groups?include=components``). Visibility 2 is hidden; 0 (signed-in users) and 1
(everyone) are both imported.
"""

from __future__ import annotations

from typing import Any

from broadcaster.importing.cachet import Flat, Reader, number
from broadcaster.importing.fetch import MAX_PAGES, JsonSource, SourceError, as_dict, as_list
from broadcaster.importing.progress import Progress

_TIMES = {
    "created": "created_at",
    "updated": "updated_at",
    "occurred": "occurred_at",
    "scheduled": "scheduled_at",
    "completed": "completed_at",
    "verified_at": "verified_at",
}
HIDDEN = 2


def flatten(resource: Any, included: dict[tuple[str, str], Any], depth: int = 0) -> Flat:
    """A 3.x resource as the 2.x object it stands for; its relationships as lists of flattened resources."""
    resource = as_dict(resource)
    attributes = as_dict(resource.get("attributes"))
    flat: Flat = {**attributes, "id": resource.get("id", attributes.get("id"))}
    for key, name in _TIMES.items():
        value = attributes.get(key)
        if isinstance(value, dict):
            flat[name] = value.get("string")
    if depth == 0:
        for name, relation in as_dict(resource.get("relationships")).items():
            data = as_dict(relation).get("data")
            refs = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
            flat[name] = [
                flatten(included.get((str(r.get("type")), str(r.get("id"))), r), included, depth + 1)
                for r in map(as_dict, refs)
            ]
    return flat


async def pages_v3(source: JsonSource, path: str, include: str, progress: Progress) -> list[Flat]:
    """Every resource of a 3.x list, flattened, following ``links.next``."""
    out: list[Flat] = []
    for page in range(1, MAX_PAGES + 1):
        params: dict[str, Any] = {"page": page, "per_page": 100}
        if include:
            params["include"] = include
        body = as_dict(await source.get(path, params))
        included = {(str(r.get("type")), str(r.get("id"))): r for r in map(as_dict, as_list(body.get("included")))}
        data = as_list(body.get("data"))
        out.extend(flatten(r, included) for r in data)
        progress.advance(len(data))
        if not data or not as_dict(body.get("links")).get("next"):
            return out
    raise SourceError(f"{source.name} kept paging {path} past {MAX_PAGES} pages")


async def fetch_v3(source: JsonSource, reader: Reader, progress: Progress, with_subscribers: bool) -> None:
    """Read a Cachet 3.x API into ``reader``."""

    async def each(path: str, include: str, step: str) -> list[Flat]:
        progress.begin(step)
        items = await pages_v3(source, path, include, progress)
        progress.end()
        return items

    groups = await each("/api/component-groups", "components", "fetching groups")
    member_of = {str(number(c.get("id"))): number(g.get("id")) for g in groups for c in as_list(g.get("components"))}
    reader.groups(groups)
    components = await each("/api/components", "", "fetching components")
    for component in components:
        component.setdefault("group_id", member_of.get(str(number(component.get("id")))))
    reader.components(components)
    for incident in await each("/api/incidents", "updates,components", "fetching incidents"):
        incident["visible"] = number(incident.get("visible")) != HIDDEN
        reader.incident(incident)
    for schedule in await each("/api/schedules", "components,updates", "fetching maintenances"):
        reader.schedule(schedule)
    if with_subscribers:
        for subscriber in await each("/api/subscribers", "components", "fetching subscribers"):
            reader.subscriber(subscriber)
