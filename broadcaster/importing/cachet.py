"""Cachet: its 2.x API (``/api/v1``, ``X-Cachet-Token``) and 3.x API (``/api``, see ``cachet3``) into a ``Bundle``.

2.x: ``/components``, ``/components/groups``, ``/incidents`` (each with its ``updates``),
``/schedules`` and, with a token, ``/subscribers``; lists paged with ``meta.pagination``.
Statuses are numbers: components 1 operational, 2 performance issues (degraded), 3 partial
outage, 4 major outage; incidents 0 scheduled, 1 investigating, 2 identified, 3 watching
(monitoring), 4 fixed (resolved); schedules 0 upcoming, 1 in progress, 2 complete. Cachet's
times carry no zone: they are read in ``zone`` (its ``APP_TIMEZONE``).

A Cachet incident's own message is its first update. Its API keeps no status history of
components, so imported components carry their present status only.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from broadcaster.importing.fetch import MAX_PAGES, JsonSource, SourceError, as_dict, as_list
from broadcaster.importing.model import (
    Bundle,
    Kind,
    Skip,
    SourceComponent,
    SourceIncident,
    SourceSubscriber,
    SourceUpdate,
    parse_time,
)
from broadcaster.importing.progress import Progress
from broadcaster.models import ComponentStatus, IncidentKind

COMPONENT_STATUS = {
    0: ComponentStatus.OPERATIONAL.value,  # 3.x "unknown"
    1: ComponentStatus.OPERATIONAL.value,
    2: ComponentStatus.DEGRADED_PERFORMANCE.value,
    3: ComponentStatus.PARTIAL_OUTAGE.value,
    4: ComponentStatus.MAJOR_OUTAGE.value,
}
INCIDENT_STATUS = {0: "scheduled", 1: "investigating", 2: "identified", 3: "monitoring", 4: "resolved"}
SCHEDULE_STATUS = {0: "scheduled", 1: "in_progress", 2: "completed"}
Flat = dict[str, Any]


def number(value: Any) -> int | None:
    """A Cachet status or id as an int: ``2``, ``"2"`` or 3.x's ``{"value": 2}``; None otherwise."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _ids(values: Any, key: str = "component_id") -> list[str]:
    """Component ids from a list of ids, of ``{"id"}`` or of ``{key}`` objects."""
    out = []
    for value in as_list(values):
        raw = value.get(key, value.get("id")) if isinstance(value, dict) else value
        if number(raw):
            out.append(f"component:{number(raw)}")
    return out


class Reader:
    """Turns Cachet's objects (2.x shapes; ``cachet3`` flattens 3.x into them) into a ``Bundle``."""

    def __init__(self, bundle: Bundle, zone: tzinfo) -> None:
        self.bundle = bundle
        self.zone = zone
        self.component_ids: set[str] = set()

    def time(self, item: Flat, key: str) -> Any:
        return parse_time(item.get(key), self.zone)

    def groups(self, items: list[Any]) -> None:
        for raw in map(as_dict, items):
            if number(raw.get("id")) is None:
                continue
            self.bundle.components.append(
                SourceComponent(
                    source_id=f"group:{number(raw['id'])}",
                    name=str(raw.get("name") or f"Group {raw['id']}"),
                    is_group=True,
                    position=number(raw.get("order")) or 0,
                    created_at=self.time(raw, "created_at"),
                    updated_at=self.time(raw, "updated_at"),
                )
            )

    def components(self, items: list[Any]) -> None:
        for raw in map(as_dict, items):
            component_id = number(raw.get("id"))
            if component_id is None:
                continue
            source_id = f"component:{component_id}"
            if raw.get("enabled") is False or raw.get("enabled") == 0:
                self.bundle.skipped.append(Skip(Kind.COMPONENTS, source_id, "disabled in Cachet (not on its page)"))
                continue
            group = number(raw.get("group_id"))
            self.component_ids.add(source_id)
            self.bundle.components.append(
                SourceComponent(
                    source_id=source_id,
                    name=str(raw.get("name") or source_id),
                    status=COMPONENT_STATUS.get(number(raw.get("status")) or 1, ComponentStatus.OPERATIONAL.value),
                    description=str(raw.get("description") or "") or None,
                    group_id=f"group:{group}" if group else None,
                    position=number(raw.get("order")) or 0,
                    created_at=self.time(raw, "created_at"),
                    updated_at=self.time(raw, "updated_at"),
                )
            )

    def incident(self, raw: Flat) -> None:
        incident_id = number(raw.get("id"))
        source_id = f"incident:{incident_id}"
        status = number(raw.get("status"))
        created_at = self.time(raw, "occurred_at") or self.time(raw, "created_at")
        if incident_id is None or status not in INCIDENT_STATUS or created_at is None:
            self.bundle.skipped.append(Skip(Kind.INCIDENTS, source_id, "no id, time or known status"))
            return
        if raw.get("visible") in (0, False):
            self.bundle.skipped.append(Skip(Kind.INCIDENTS, source_id, "hidden in Cachet (not visible)"))
            return
        later = sorted(
            (u for u in map(as_dict, as_list(raw.get("updates"))) if self.time(u, "created_at") is not None),
            key=lambda u: (self.time(u, "created_at"), number(u.get("id")) or 0),
        )
        first = number(later[0].get("status")) if later else None
        # Cachet keeps an incident's latest status on it: an opening above its first update's was "investigating".
        opening = status if first is None or status <= first else 1
        updates = [
            SourceUpdate(f"{source_id}:opening", INCIDENT_STATUS[opening], str(raw.get("message") or ""), created_at)
        ]
        for u in later:
            code = number(u.get("status"))
            updates.append(
                SourceUpdate(
                    f"incident-update:{number(u.get('id'))}",
                    INCIDENT_STATUS.get(code if code is not None else opening, INCIDENT_STATUS[opening]),
                    str(u.get("message") or ""),
                    self.time(u, "created_at"),
                )
            )
        component = f"component:{number(raw.get('component_id'))}"
        maintenance = status == 0
        self.bundle.incidents.append(
            SourceIncident(
                source_id=source_id,
                kind=IncidentKind.MAINTENANCE.value if maintenance else IncidentKind.INCIDENT.value,
                name=str(raw.get("name") or ""),
                status=updates[-1].status,
                impact="",  # Cachet records none: derived here from nothing, so "none"
                created_at=created_at,
                updated_at=self.time(raw, "updated_at") or created_at,
                updates=tuple(updates),
                scheduled_for=self.time(raw, "scheduled_at") if maintenance else None,
                component_ids=(component,) if component in self.component_ids else (),
            )
        )

    def schedule(self, raw: Flat) -> None:
        schedule_id = number(raw.get("id"))
        source_id = f"schedule:{schedule_id}"
        code = number(raw.get("status"))
        status = SCHEDULE_STATUS.get(code) if code is not None else None
        created_at = self.time(raw, "created_at") or self.time(raw, "scheduled_at")
        if schedule_id is None or status is None or created_at is None:
            self.bundle.skipped.append(Skip(Kind.MAINTENANCES, source_id, "no id, time or known status"))
            return
        completed_at = self.time(raw, "completed_at")
        at = completed_at if status == "completed" and completed_at else created_at
        update = SourceUpdate(f"{source_id}:message", status, str(raw.get("message") or ""), at)
        components = tuple(c for c in _ids(raw.get("components")) if c in self.component_ids)
        self.bundle.incidents.append(
            SourceIncident(
                source_id=source_id,
                kind=IncidentKind.MAINTENANCE.value,
                name=str(raw.get("name") or ""),
                status=status,
                impact="maintenance",
                created_at=created_at,
                updated_at=self.time(raw, "updated_at") or at,
                updates=(update,),
                scheduled_for=self.time(raw, "scheduled_at"),
                scheduled_until=completed_at,
                component_ids=components,
            )
        )

    def subscriber(self, raw: Flat) -> None:
        source_id = f"subscriber:{number(raw.get('id'))}"
        if not (raw.get("verified_at") or raw.get("verified")):
            self.bundle.skipped.append(Skip(Kind.SUBSCRIBERS, source_id, "never verified in Cachet (no opt-in)"))
            return
        channel, address = ("email", raw.get("email")) if raw.get("email") else ("sms", raw.get("phone_number"))
        chosen = [] if raw.get("global") else _ids(raw.get("subscriptions") or raw.get("components"))
        self.bundle.subscribers.append(
            SourceSubscriber(
                source_id=source_id,
                channel=channel,
                address=str(address or ""),
                component_ids=tuple(sorted(set(chosen))),
                created_at=self.time(raw, "created_at"),
            )
        )


async def pages_v2(source: JsonSource, path: str, progress: Progress) -> list[Any]:
    """Every item of a 2.x list, following ``meta.pagination.total_pages``."""
    items: list[Any] = []
    for page in range(1, MAX_PAGES + 1):
        body = as_dict(await source.get(path, {"page": page, "per_page": 100}))
        data = as_list(body.get("data"))
        items.extend(data)
        progress.advance(len(data))
        total = number(as_dict(as_dict(body.get("meta")).get("pagination")).get("total_pages")) or 1
        if page >= total or not data:
            return items
    raise SourceError(f"{source.name} kept paging {path} past {MAX_PAGES} pages")


async def fetch_v2(source: JsonSource, reader: Reader, progress: Progress, with_subscribers: bool) -> None:
    """Read a Cachet 2.x API into ``reader``."""

    async def each(path: str, step: str) -> list[Any]:
        progress.begin(step)
        items = await pages_v2(source, path, progress)
        progress.end()
        return items

    reader.groups(await each("/api/v1/components/groups", "fetching groups"))
    reader.components(await each("/api/v1/components", "fetching components"))
    for raw in await each("/api/v1/incidents", "fetching incidents"):
        reader.incident(as_dict(raw))
    for raw in await each("/api/v1/schedules", "fetching maintenances"):
        reader.schedule(as_dict(raw))
    if with_subscribers:
        for raw in await each("/api/v1/subscribers", "fetching subscribers"):
            reader.subscriber(as_dict(raw))
