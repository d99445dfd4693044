"""Atlassian Statuspage: its REST API v1 (``Authorization: OAuth KEY``) read into a ``Bundle``.

``GET /v1/pages/{page_id}`` (the name), ``/components`` (groups are components with
``group: true`` and ``components: [ids]``), ``/incidents`` (incidents and scheduled
maintenances, each with ``incident_updates`` and ``components``) and ``/subscribers``
(active ones: they confirmed there). Lists are paged; subscribers count pages from 0, the
rest from 1, as Statuspage documents. The component and incident shapes are the ones the
public v2 JSON uses too (``public_v2`` reads them with the same functions).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import phonenumbers

from broadcaster.importing.fetch import JsonSource, SourceError, as_dict, as_list
from broadcaster.importing.model import (
    Bundle,
    Kind,
    Skip,
    SourceChange,
    SourceComponent,
    SourceIncident,
    SourceSubscriber,
    SourceUpdate,
    parse_time,
)
from broadcaster.importing.progress import Progress
from broadcaster.models import IncidentKind, MaintenanceStatus

API_URL = "https://api.statuspage.io"
_MAINTENANCE_STATUSES = {s.value for s in MaintenanceStatus}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def read_components(items: Iterable[Any]) -> list[SourceComponent]:
    """Statuspage components and groups (the same shape in v1 and the public v2 JSON)."""
    raw = [as_dict(i) for i in items if as_dict(i).get("id")]
    member_of = {str(child): str(g["id"]) for g in raw if g.get("group") for child in as_list(g.get("components"))}
    out = []
    for item in raw:
        source_id = str(item["id"])
        group = item.get("group_id") or member_of.get(source_id)
        out.append(
            SourceComponent(
                source_id=source_id,
                name=_text(item.get("name")) or source_id,
                status=_text(item.get("status")) or "operational",
                description=_text(item.get("description")) or None,
                group_id=None if item.get("group") or not group else str(group),
                is_group=bool(item.get("group")),
                position=int(item.get("position") or 0),
                showcase=bool(item.get("showcase", True)),
                only_show_if_degraded=bool(item.get("only_show_if_degraded", False)),
                created_at=parse_time(item.get("created_at")),
                updated_at=parse_time(item.get("updated_at")),
            )
        )
    return out


def read_incident(item: Any, bundle: Bundle) -> None:
    """One Statuspage incident or scheduled maintenance into ``bundle`` (or its skip list)."""
    raw = as_dict(item)
    source_id = str(raw.get("id") or "")
    status = _text(raw.get("status"))
    is_maintenance = bool(raw.get("scheduled_for")) or status in _MAINTENANCE_STATUSES
    kind = Kind.MAINTENANCES if is_maintenance else Kind.INCIDENTS
    created_at = parse_time(raw.get("created_at"))
    if not source_id or created_at is None:
        bundle.skipped.append(Skip(kind, source_id or "?", "it has no id or no created_at time"))
        return
    updates = []
    for entry in as_list(raw.get("incident_updates")):
        u = as_dict(entry)
        at = parse_time(u.get("created_at")) or parse_time(u.get("display_at"))
        if not u.get("id") or at is None:
            bundle.skipped.append(Skip(Kind.UPDATES, str(u.get("id") or "?"), "it has no id or no time"))
            continue
        changes = tuple(
            SourceChange(str(c["code"]), _text(c.get("new_status")))
            for c in map(as_dict, as_list(u.get("affected_components")))
            if c.get("code") and c.get("new_status")
        )
        updates.append(
            SourceUpdate(
                source_id=str(u["id"]),
                status=_text(u.get("status")),
                body=_text(u.get("body")),
                created_at=at,
                display_at=parse_time(u.get("display_at")),
                deliver_notifications=bool(u.get("deliver_notifications", True)),
                changes=changes,
            )
        )
    bundle.incidents.append(
        SourceIncident(
            source_id=source_id,
            kind=IncidentKind.MAINTENANCE.value if is_maintenance else IncidentKind.INCIDENT.value,
            name=_text(raw.get("name")),
            status=status,
            impact=_text(raw.get("impact")),
            impact_override=bool(raw.get("impact_override")),
            created_at=created_at,
            updated_at=parse_time(raw.get("updated_at")) or created_at,
            updates=tuple(updates),
            started_at=parse_time(raw.get("started_at")),
            monitoring_at=parse_time(raw.get("monitoring_at")),
            resolved_at=parse_time(raw.get("resolved_at")),
            scheduled_for=parse_time(raw.get("scheduled_for")),
            scheduled_until=parse_time(raw.get("scheduled_until")),
            component_ids=tuple(str(c["id"]) for c in map(as_dict, as_list(raw.get("components"))) if c.get("id")),
        )
    )


def _phone(number: str, country: str) -> str:
    """E.164 from Statuspage's ``phone_number`` and ``phone_country``; as given when it does not parse."""
    try:
        parsed = phonenumbers.parse(number, country.upper() or None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def read_subscriber(item: Any, every_component: set[str], bundle: Bundle) -> None:
    """One Statuspage subscriber into ``bundle`` (or its skip list)."""
    raw = as_dict(item)
    source_id = str(raw.get("id") or "?")
    mode = _text(raw.get("mode")) or ("sms" if raw.get("phone_number") else "email")
    if raw.get("quarantined_at"):
        bundle.skipped.append(Skip(Kind.SUBSCRIBERS, source_id, "quarantined at Statuspage (it could not be reached)"))
        return
    if mode == "email":
        address = _text(raw.get("email"))
    elif mode == "sms":
        address = _phone(_text(raw.get("phone_number")), _text(raw.get("phone_country")))
    elif mode == "webhook":
        address = _text(raw.get("endpoint"))
    else:
        why = f"a {mode} subscriber: Statuspage does not export where to post for it"
        bundle.skipped.append(Skip(Kind.SUBSCRIBERS, source_id, why))
        return
    chosen = {str(c.get("id") if isinstance(c, dict) else c) for c in as_list(raw.get("components"))}
    if every_component and every_component <= chosen:
        chosen = set()  # subscribed to everything: so also to components added later
    bundle.subscribers.append(
        SourceSubscriber(
            source_id=source_id,
            channel=mode,
            address=address,
            component_ids=tuple(sorted(chosen)),
            created_at=parse_time(raw.get("created_at")),
        )
    )


async def _collect(source: JsonSource, path: str, step: str, progress: Progress, first: int = 1) -> list[Any]:
    items: list[Any] = []
    progress.begin(step)
    async for page in source.pages(path, first=first):
        items.extend(page)
        progress.advance(len(page))
    progress.end()
    return items


async def fetch(source: JsonSource, page_id: str, progress: Progress) -> Bundle:
    """Read the page ``page_id`` through ``source`` (pointed at the API with the ``OAuth`` header)."""
    if not page_id.strip():
        raise SourceError("Statuspage: --page-id is empty")
    base = f"/v1/pages/{quote(page_id.strip(), safe='')}"
    page = as_dict(await source.get(base))
    bundle = Bundle(source=f"statuspage:{page_id.strip()}", label=f"Statuspage page {page_id.strip()}")
    bundle.page_name = _text(page.get("name")) or None
    bundle.components = read_components(await _collect(source, f"{base}/components", "fetching components", progress))
    for item in await _collect(source, f"{base}/incidents", "fetching incidents", progress):
        read_incident(item, bundle)
    every = {c.source_id for c in bundle.components if not c.is_group}
    for item in await _collect(source, f"{base}/subscribers", "fetching subscribers", progress, first=0):
        read_subscriber(item, every, bundle)
    return bundle
