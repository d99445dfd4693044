"""Statuspage's public v2 API shapes: the same field names, order and enums, so its clients read us.

Pure functions from a ``Snapshot`` (or views) to JSON-able dicts; keys are in the order real
Statuspage pages send them and every key is present (``None`` where empty). See
``/api/v2/*`` in ``status_page/api/v2.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from broadcaster.domain.contact_channels import as_json
from broadcaster.models import ComponentStatus, Impact
from broadcaster.render import iso
from broadcaster.views.public import IncidentView, Row, Snapshot, UpdateView

Json = dict[str, Any]

# indicator -> rank, for "raise to at least".
INDICATOR_RANK = {"none": 0, "maintenance": 1, "minor": 2, "major": 3, "critical": 4}
IMPACT_INDICATOR = {
    Impact.MINOR.value: ("minor", "Minor Service Outage"),
    Impact.MAJOR.value: ("major", "Partial System Outage"),
    Impact.CRITICAL.value: ("critical", "Major System Outage"),
}
OPERATIONAL = ("none", "All Systems Operational")
MAINTENANCE = ("maintenance", "Service Under Maintenance")


def components_indicator(statuses: Sequence[str]) -> tuple[str, str]:
    """Atlassian's rule from the (non-group) components' statuses: (indicator, description)."""
    s = ComponentStatus
    if not statuses:
        return OPERATIONAL
    if len(statuses) == 1:
        single = {
            s.DEGRADED_PERFORMANCE: ("minor", "Partially Degraded Service"),
            s.PARTIAL_OUTAGE: ("major", "Partial System Outage"),
            s.MAJOR_OUTAGE: ("critical", "Major System Outage"),
            s.UNDER_MAINTENANCE: MAINTENANCE,
        }
        return single.get(ComponentStatus(statuses[0]), OPERATIONAL)
    if all(x == s.MAJOR_OUTAGE for x in statuses):
        return "critical", "Major System Outage"
    if s.MAJOR_OUTAGE in statuses or all(x == s.PARTIAL_OUTAGE for x in statuses):
        return "major", "Partial System Outage"
    if s.PARTIAL_OUTAGE in statuses:
        return "minor", "Minor Service Outage"
    if all(x == s.DEGRADED_PERFORMANCE for x in statuses):
        return "minor", "Degraded System Service"
    if s.DEGRADED_PERFORMANCE in statuses:
        return "minor", "Partially Degraded Service"
    if s.UNDER_MAINTENANCE in statuses:
        return MAINTENANCE
    return OPERATIONAL


def page_status(
    statuses: Sequence[str], open_impacts: Iterable[str] = (), maintenance_active: bool = False
) -> tuple[str, str]:
    """The page's indicator: the components' rule, raised to at least each active incident's impact."""
    indicator = components_indicator(statuses)
    for impact in open_impacts:
        raised = IMPACT_INDICATOR.get(impact)
        if raised and INDICATOR_RANK[raised[0]] > INDICATOR_RANK[indicator[0]]:
            indicator = raised
    if maintenance_active and indicator == OPERATIONAL:
        indicator = MAINTENANCE
    return indicator


def status_json(snapshot: Snapshot) -> Json:
    statuses = [c["status"] for c in snapshot.components if not c["is_group"]]
    indicator, description = page_status(
        statuses, [i.row["impact"] for i in snapshot.unresolved], bool(snapshot.active_maintenances)
    )
    return {"indicator": indicator, "description": description}


def page_json(page: Row) -> Json:
    """Statuspage's page object; then, when any are listed, our extension ``contact_channels``
    (how to reach us now: ``[{name, state, note, url}]``), which Statuspage clients ignore."""
    body: Json = {
        "id": page["id"],
        "name": page["name"],
        "url": page["url"],
        "time_zone": page["time_zone"],
        "updated_at": iso(page["updated_at"]),
    }
    if page.get("contact"):
        body["contact_channels"] = [as_json(c) for c in page["contact"]]
    return body


def component_json(row: Row, page_id: str, children: Sequence[str] | None = None) -> Json:
    body: Json = {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "position": row["position"],
        "description": row["description"],
        "showcase": bool(row["showcase"]),
        "start_date": row["start_date"],
        "group_id": row["group_id"],
        "page_id": page_id,
        "group": bool(row["is_group"]),
        "only_show_if_degraded": bool(row["only_show_if_degraded"]),
    }
    if row["is_group"]:
        body["components"] = list(children or [])
    return body


def components_json(rows: Sequence[Row], page_id: str) -> list[Json]:
    """The flat list Statuspage sends: groups among components, children listed on each group."""
    children: dict[str, list[str]] = {}
    for row in rows:
        if row["group_id"]:
            children.setdefault(row["group_id"], []).append(row["id"])
    return [component_json(r, page_id, children.get(r["id"])) for r in rows]


def update_json(update: UpdateView) -> Json:
    return {
        "id": update.id,
        "status": update.status,
        "body": update.body_text,
        "incident_id": update.incident_id,
        "created_at": iso(update.created_at),
        "updated_at": iso(update.created_at),
        "display_at": iso(update.display_at),
        "affected_components": [dict(c) for c in update.changes] or None,
        "deliver_notifications": update.deliver_notifications,
        "custom_tweet": None,
        "tweet_id": None,
    }


def incident_json(view: IncidentView, snapshot_components: dict[str, Row], page: Row) -> Json:
    row = view.row
    body: Json = {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "monitoring_at": iso(row["monitoring_at"]),
        "resolved_at": iso(row["resolved_at"]),
        "impact": row["impact"],
        "shortlink": f"{page['url']}/incidents/{row['id']}",
        "started_at": iso(row["started_at"]),
        "page_id": page["id"],
        "incident_updates": [update_json(u) for u in view.updates],
        "components": [
            component_json(snapshot_components[c], page["id"]) for c in view.component_ids if c in snapshot_components
        ],
        "reminder_intervals": None,
    }
    if view.is_maintenance:
        body["scheduled_for"] = iso(row["scheduled_for"])
        body["scheduled_until"] = iso(row["scheduled_until"])
    return body


def _incidents(snapshot: Snapshot, views: Iterable[IncidentView]) -> list[Json]:
    by_id = snapshot.component_by_id
    return [incident_json(v, by_id, snapshot.page) for v in views]


def summary(snapshot: Snapshot) -> Json:
    return {
        "page": page_json(snapshot.page),
        "components": components_json(snapshot.components, snapshot.page["id"]),
        "incidents": _incidents(snapshot, snapshot.unresolved),
        "scheduled_maintenances": _incidents(snapshot, [*snapshot.active_maintenances, *snapshot.upcoming]),
        "status": status_json(snapshot),
    }


def status(snapshot: Snapshot) -> Json:
    return {"page": page_json(snapshot.page), "status": status_json(snapshot)}


def components(snapshot: Snapshot) -> Json:
    return {"page": page_json(snapshot.page), "components": components_json(snapshot.components, snapshot.page["id"])}


def incidents(snapshot: Snapshot) -> Json:
    return {"page": page_json(snapshot.page), "incidents": _incidents(snapshot, snapshot.incidents[:50])}


def unresolved(snapshot: Snapshot) -> Json:
    return {"page": page_json(snapshot.page), "incidents": _incidents(snapshot, snapshot.unresolved)}


def scheduled_maintenances(snapshot: Snapshot) -> Json:
    return {
        "page": page_json(snapshot.page),
        "scheduled_maintenances": _incidents(snapshot, snapshot.maintenances[:50]),
    }


def upcoming(snapshot: Snapshot) -> Json:
    return {"page": page_json(snapshot.page), "scheduled_maintenances": _incidents(snapshot, snapshot.upcoming)}


def active(snapshot: Snapshot) -> Json:
    return {
        "page": page_json(snapshot.page),
        "scheduled_maintenances": _incidents(snapshot, snapshot.active_maintenances),
    }


# path under /api/v2 -> serializer; the static export writes the same files.
ENDPOINTS = {
    "summary.json": summary,
    "status.json": status,
    "components.json": components,
    "incidents.json": incidents,
    "incidents/unresolved.json": unresolved,
    "scheduled-maintenances.json": scheduled_maintenances,
    "scheduled-maintenances/upcoming.json": upcoming,
    "scheduled-maintenances/active.json": active,
}
