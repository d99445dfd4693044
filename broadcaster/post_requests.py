"""What can be posted, as values: the one posting service (``broadcaster.posting``) takes these.

Every entry point (REST API, console, CLI, playbooks, jobs) builds one of these and hands
it to ``posting.post``; ``posting.preview`` is the same call without the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broadcaster.domain.idempotency import Stored
from broadcaster.domain.incidents import Posted
from broadcaster.models import ComponentStatus
from broadcaster.schemas import IncidentIn, MaintenancePatch, UpdateIn, validate

if TYPE_CHECKING:
    from broadcaster.crisis.playbooks import OpenIn
    from broadcaster.domain.contact_channels import ContactChannelsIn


@dataclass(frozen=True)
class NewIncident:
    """A new incident or maintenance and its first update."""

    data: IncidentIn
    drill: bool = False
    meta: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class FollowUp:
    """A further update on an incident or a maintenance step."""

    incident_id: str
    data: UpdateIn


@dataclass(frozen=True)
class ComponentNotice:
    """A component's status changed. With ``notify`` it is posted as an update of its own."""

    component_id: str
    status: ComponentStatus
    notify: bool = True
    note: str = ""
    deliver_notifications: bool = True


@dataclass(frozen=True)
class PlaybookOpening:
    """An incident (or drill) opened from a playbook level, with that level's contacts."""

    playbook_id: str
    data: OpenIn


@dataclass(frozen=True)
class MaintenanceStep:
    """A maintenance moving on by itself (``broadcaster.domain.maintenance.Step``): remind, start, complete, recur.

    ``window`` is the edge the step belongs to (ISO time), so a rescheduled window is a new step;
    posted by the worker with the idempotency key ``key``, it happens once however many workers try.
    """

    incident_id: str
    step: str
    window: str = ""

    @property
    def key(self) -> str:
        return f"maintenance:{self.incident_id}:{self.step}:{self.window}"


@dataclass(frozen=True)
class MaintenanceEdit:
    """A scheduled maintenance changed: a new window or components are posted as an update, the rest quietly."""

    incident_id: str
    data: MaintenancePatch


@dataclass(frozen=True)
class ContactNotice:
    """The contact channels changed (how to reach us now). With ``data.notify`` it is posted as an update."""

    data: ContactChannelsIn


@dataclass(frozen=True)
class DraftPublication:
    """A draft an alert proposed (``broadcaster.alerts``), published as it stands or with a new title or message.

    The auto-publish cron posts it with the idempotency key ``key``: once, however many workers try.
    """

    draft_id: str
    title: str | None = None
    message: str | None = None

    @property
    def key(self) -> str:
        return f"draft:{self.draft_id}"


PostRequest = (
    NewIncident
    | FollowUp
    | ComponentNotice
    | PlaybookOpening
    | MaintenanceStep
    | MaintenanceEdit
    | ContactNotice
    | DraftPublication
)


@dataclass(frozen=True)
class PostResult:
    """What one ``post`` did: the update it recorded (None for a quiet component change).

    ``replayed`` is the first answer when an idempotency key was seen before: nothing
    was written or enqueued this time. ``queued`` is False when Redis was out of reach
    (the outbox relay enqueues the fan-out later).
    """

    posted: Posted | None = None
    queued: bool = True
    replayed: Stored | None = None

    @property
    def ref(self) -> dict[str, str] | None:
        """``{"incident_id", "update_id"}`` of the recorded (or replayed) update."""
        if self.replayed is not None:
            return dict(self.replayed.ref)
        if self.posted is not None:
            return {"incident_id": self.posted.incident_id, "update_id": self.posted.update_id}
        return None


def request_from_body(body: Mapping[str, Any], incident_id: str | None = None) -> NewIncident | FollowUp:
    """A JSON body (API, CLI, console) as a request: a follow-up with ``incident_id``, else a new incident."""
    if incident_id:
        return FollowUp(incident_id, validate(UpdateIn, dict(body)))
    return NewIncident(validate(IncidentIn, dict(body)))
