"""What an import carries, whatever its source: the page, components, incidents with updates, subscribers.

Ids here are the source's own (strings); the writer maps them to local ids. Times are aware UTC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from broadcaster.models import ComponentStatus


class Kind:
    """The kinds an import reports on, in the order it writes them."""

    PAGE = "page"
    GROUPS = "groups"
    COMPONENTS = "components"
    INCIDENTS = "incidents"
    MAINTENANCES = "maintenances"
    UPDATES = "updates"
    SUBSCRIBERS = "subscribers"

    ALL = (PAGE, GROUPS, COMPONENTS, INCIDENTS, MAINTENANCES, UPDATES, SUBSCRIBERS)


@dataclass(frozen=True)
class SourceComponent:
    """A component or a group (``is_group``); ``group_id`` is the source id of its group."""

    source_id: str
    name: str
    status: str = ComponentStatus.OPERATIONAL.value
    description: str | None = None
    group_id: str | None = None
    is_group: bool = False
    position: int = 0  # among its siblings at the source
    showcase: bool = True
    only_show_if_degraded: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SourceChange:
    """A component's status as an update set it."""

    component_id: str
    new_status: str


@dataclass(frozen=True)
class SourceUpdate:
    source_id: str
    status: str
    body: str
    created_at: datetime
    display_at: datetime | None = None
    deliver_notifications: bool = True
    changes: tuple[SourceChange, ...] = ()


@dataclass(frozen=True)
class SourceIncident:
    """An incident or a maintenance (``kind``) with its updates, oldest first."""

    source_id: str
    kind: str
    name: str
    status: str
    impact: str
    created_at: datetime
    updated_at: datetime
    updates: tuple[SourceUpdate, ...]
    impact_override: bool = False
    started_at: datetime | None = None
    monitoring_at: datetime | None = None
    resolved_at: datetime | None = None
    scheduled_for: datetime | None = None
    scheduled_until: datetime | None = None
    component_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceSubscriber:
    """A subscriber who opted in at the source; ``component_ids`` empty: every component."""

    source_id: str
    channel: str
    address: str
    component_ids: tuple[str, ...] = ()
    created_at: datetime | None = None


@dataclass(frozen=True)
class Skip:
    """Something the source has that is not imported, and why."""

    kind: str
    source_id: str
    why: str


@dataclass
class Bundle:
    """Everything one source gave; ``source`` names it for the id mapping (``statuspage:PAGE_ID``)."""

    source: str
    label: str  # for people: "Statuspage page abc123"
    page_name: str | None = None
    components: list[SourceComponent] = field(default_factory=list)
    incidents: list[SourceIncident] = field(default_factory=list)
    subscribers: list[SourceSubscriber] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


def fingerprint(value: Any) -> str:
    """SHA-256 of a dataclass (or JSON-able value) in a canonical form: equal when the source said the same."""
    data = asdict(value) if hasattr(value, "__dataclass_fields__") else value
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_time(value: Any, zone: tzinfo = UTC) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset), or a zone-less ``YYYY-MM-DD HH:MM:SS`` read in ``zone``.

    None when absent or unreadable.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)
