"""What the admin and public APIs offer, route by route: the rows ``openapi.document`` is built from.

``tests/integration/test_openapi.py`` checks that every ``/api/v1`` and ``/api/v2`` route has a row.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from broadcaster.domain import audit
from broadcaster.domain.contact_channels import ContactChannelsIn
from broadcaster.domain.page_brand import BrandPatch
from broadcaster.schemas import (
    ComponentIn,
    ComponentPatch,
    IncidentIn,
    MaintenancePatch,
    PreviewIn,
    SubscriberIn,
    UpdateIn,
)
from status_page.api.openapi_schemas import V2_ENDPOINTS, Schema
from status_page.api.ops import RetryIn


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query | header
    schema: Schema
    description: str = ""


@dataclass(frozen=True)
class Op:
    """One documented route."""

    method: str
    path: str
    summary: str
    tag: str
    answers: dict[int, str | None]  # status -> schema name (None: no body)
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    auth: bool = True
    errors: tuple[int, ...] = ()
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    media_type: str = "application/json"  # of the answers with a body (errors are always JSON)


LIMIT = Param("limit", "query", {"type": "integer"}, "page size (clamped to the allowed range)")
OFFSET = Param("offset", "query", {"type": "integer"}, "rows to skip")
IDEMPOTENCY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "send the same key to retry safely: the first answer is replayed, nothing is posted twice",
)


def path_param(name: str) -> Param:
    return Param(name, "path", {"type": "string"})


BODY_ERRORS = (400, 413, 422)
V1 = "Admin API (v1)"
PLAYBOOKS = "Playbooks (v1)"
V2 = "Public API (v2, Statuspage-compatible)"


class LevelIn(BaseModel):
    """``POST /api/v1/incidents/{incident_id}/level``: escalate to a higher level."""

    level: int


def _model(module: str, name: str) -> type[BaseModel] | None:
    """A request model owned by another module, looked up by name (documented when present)."""
    try:
        model = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


OPERATIONS: tuple[Op, ...] = (
    Op("GET", "/api/v1/components", "List components", V1, {200: "ComponentList"}),
    Op(
        "POST",
        "/api/v1/components",
        "Create a component",
        V1,
        {201: "Component"},
        ComponentIn,
        errors=(*BODY_ERRORS, 404),
    ),
    Op(
        "PATCH",
        "/api/v1/components/{component_id}",
        "Change a component (status, name, ...)",
        V1,
        {200: "Component"},
        ComponentPatch,
        (path_param("component_id"),),
        errors=(*BODY_ERRORS, 404),
    ),
    Op(
        "GET",
        "/api/v1/incidents",
        "List incidents and maintenances, newest first, with their updates",
        V1,
        {200: "IncidentList"},
        params=(LIMIT, OFFSET),
        errors=(400,),
    ),
    Op(
        "POST",
        "/api/v1/incidents",
        "Open an incident (or schedule a maintenance) with its first update",
        V1,
        {201: "IncidentCreated"},
        IncidentIn,
        (IDEMPOTENCY,),
        errors=(*BODY_ERRORS, 404, 409),
        description="Answers 201 once the update is committed; the fan-out to every channel follows. "
        "``X-Broadcaster-Queued: later`` means Redis was out of reach and the relay will enqueue it.",
    ),
    Op(
        "GET",
        "/api/v1/incidents/{incident_id}",
        "An incident with all its updates",
        V1,
        {200: "Incident"},
        params=(path_param("incident_id"),),
        errors=(404,),
    ),
    Op(
        "PATCH",
        "/api/v1/incidents/{incident_id}",
        "Edit a maintenance: its window, components, rule and automation",
        V1,
        {200: "MaintenanceEdited"},
        MaintenancePatch,
        (path_param("incident_id"),),
        errors=(*BODY_ERRORS, 404, 409),
        description="Only the fields sent change. A new window (``scheduled_for``, ``scheduled_until``) or new "
        "``components`` ({component_id: status during the window}) is posted as an update to every enabled channel "
        "(``message`` overrides its text) and bumps the event's SEQUENCE in ``/maintenance.ics``; "
        "``auto_transition``, ``auto_start_message``, ``auto_complete_message``, ``rrule`` (RFC 5545) and "
        "``remind_before_minutes`` change quietly. 409 for a completed maintenance; 422 naming the field otherwise.",
    ),
    Op(
        "POST",
        "/api/v1/incidents/{incident_id}/updates",
        "Post an update on an incident",
        V1,
        {201: "Update"},
        UpdateIn,
        (path_param("incident_id"), IDEMPOTENCY),
        errors=(*BODY_ERRORS, 404, 409),
    ),
    Op(
        "POST",
        "/api/v1/preview",
        "Every channel's exact rendition of an update, sending nothing",
        V1,
        {200: "Preview"},
        PreviewIn,
        errors=(*BODY_ERRORS, 404),
    ),
    Op(
        "GET",
        "/api/v1/updates/{update_id}/deliveries",
        "Delivery counts of an update per channel",
        V1,
        {200: "DeliveryCounts"},
        params=(path_param("update_id"),),
        errors=(404,),
    ),
    Op(
        "GET",
        "/api/v1/updates/{update_id}/failures",
        "Failed deliveries of an update, with reasons",
        V1,
        {200: "FailureList"},
        params=(path_param("update_id"),),
        errors=(404,),
    ),
    Op(
        "POST",
        "/api/v1/updates/{update_id}/deliveries/retry",
        "Put failed deliveries back in line",
        V1,
        {202: "RetryStarted"},
        RetryIn,
        (path_param("update_id"),),
        errors=(*BODY_ERRORS, 404),
    ),
    Op(
        "GET",
        "/api/v1/deadletter",
        "Deliveries that failed for good, with totals per update and channel",
        V1,
        {200: "DeadLetters"},
        params=(
            Param("update_id", "query", {"type": "string"}),
            Param("channel", "query", {"type": "string"}),
            LIMIT,
            OFFSET,
        ),
        errors=(400,),
    ),
    Op("GET", "/api/v1/channels", "Channels: enabled or not, and which update each shows now", V1, {200: "Channels"}),
    Op(
        "GET",
        "/api/v1/channels/health",
        "Every channel's pre-flight check: its account verified, nothing posted (admin tokens only)",
        V1,
        {200: "ChannelHealth"},
        params=(
            Param(
                "cached",
                "query",
                {"type": "string", "enum": ["1", "0", "true", "false"]},
                "1: the last stored results, checking nothing (default 0: check now)",
            ),
        ),
        errors=(400, 403),
        description="Checks each enabled channel now (SMTP EHLO/AUTH, the Twilio account, Mastodon "
        "``verify_credentials``, the Zendesk section, the Freshdesk folder, ...) and stores the results; "
        "the commanders hear of a channel that starts failing once. Channels without a check (webhooks, "
        "the desk, the status page) are ``skipped``.",
    ),
    Op(
        "GET",
        "/api/v1/subscribers",
        "List subscribers",
        V1,
        {200: "SubscriberList"},
        params=(Param("channel", "query", {"type": "string"}), LIMIT, OFFSET),
        errors=(400,),
    ),
    Op(
        "POST",
        "/api/v1/subscribers",
        "Add a subscriber (admins may skip the opt-in with confirmed=true)",
        V1,
        {201: "SubscriberCreated", 200: "Subscriber"},
        SubscriberIn,
        errors=(*BODY_ERRORS, 404),
        description="201 for a new subscriber (a webhook's ``secret`` is shown only then); 200 when the "
        "address was already subscribed.",
    ),
    Op(
        "GET",
        "/api/v1/subscribers.csv",
        "Every active subscriber as CSV (admin tokens only)",
        V1,
        {200: "SubscribersCsv"},
        errors=(403,),
        description="The file ``broadcaster subscribers import`` and the console read: components by name "
        "(``;``-separated, empty for every component), ``language`` empty, no webhook secrets. The drill "
        "audience and those who unsubscribed or bounced are left out.",
        media_type="text/csv",
    ),
    Op(
        "DELETE",
        "/api/v1/subscribers/{subscriber_id}",
        "Remove a subscriber",
        V1,
        {204: None},
        params=(path_param("subscriber_id"),),
        errors=(404,),
    ),
    Op(
        "GET",
        "/api/v1/audit",
        "The audit log, newest first (admin tokens only)",
        V1,
        {200: "AuditPage"},
        params=(
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": audit.MAX_LIMIT},
                "page size (default 50)",
            ),
            Param(
                "before",
                "query",
                {"type": "integer", "minimum": 1, "maximum": audit.MAX_ID},
                "an entry id: only older entries (the previous answer's ``next_before``)",
            ),
        ),
        errors=(400, 403, 422),
        description="Who did what, when: every write from the API, the console, the CLI and jobs. "
        "Page back with ``before=next_before`` until ``next_before`` is null.",
    ),
    Op(
        "GET",
        "/api/v1/tokens",
        "API tokens: name, role, created, last used, expiry (never the secret)",
        V1,
        {200: "TokenList"},
        errors=(403,),
    ),
    Op(
        "DELETE",
        "/api/v1/tokens/{token_id}",
        "Revoke an API token: its next request gets 401",
        V1,
        {204: None},
        params=(path_param("token_id"),),
        errors=(403, 404),
    ),
    Op("GET", "/api/v1/playbooks", "Crisis playbooks and their levels", PLAYBOOKS, {200: "PlaybookList"}),
    Op(
        "POST",
        "/api/v1/playbooks/{playbook_id}/open",
        "Open an incident (or a drill) from a playbook level",
        PLAYBOOKS,
        {201: "PlaybookIncident"},
        _model("broadcaster.crisis.playbooks", "OpenIn"),
        (path_param("playbook_id"),),
        errors=(*BODY_ERRORS, 404, 409),
    ),
    Op(
        "POST",
        "/api/v1/incidents/{incident_id}/level",
        "Escalate a playbook incident to a higher level",
        PLAYBOOKS,
        {200: "LevelRaised"},
        LevelIn,
        (path_param("incident_id"),),
        errors=(*BODY_ERRORS, 404, 409),
    ),
    Op(
        "GET",
        "/api/v1/incidents/{incident_id}/contacts",
        "The incident's team: who was told, who acknowledged",
        PLAYBOOKS,
        {200: "Team"},
        params=(path_param("incident_id"),),
        errors=(404,),
    ),
    Op(
        "GET",
        "/api/v1/incidents/{incident_id}/report",
        "Drill report: time to first update, promises, reach",
        PLAYBOOKS,
        {200: "DrillReport"},
        params=(path_param("incident_id"),),
        errors=(404, 422),
    ),
    Op("GET", "/api/v1/page", "The page's brand and its contact channels", V1, {200: "Page"}),
    Op(
        "PATCH",
        "/api/v1/page",
        "Brand the page: name, description, logo, favicon, accent colour, links, custom CSS (admin tokens only)",
        V1,
        {200: "Page"},
        BrandPatch,
        errors=(*BODY_ERRORS, 403),
        description="Only the fields sent change; null clears one. An accent colour under 4.5:1 against the "
        "page background is refused (422 on ``accent_color`` with the ratio); an SVG is stored sanitized.",
    ),
    Op(
        "PUT",
        "/api/v1/page/contact-channels",
        "How to reach us now: replace the contact channels (open, busy, closed)",
        V1,
        {200: "ContactChannelsSaved"},
        ContactChannelsIn,
        errors=(*BODY_ERRORS, 403),
        description="While any is not open, the page, the mirror and the desk show a banner and email updates "
        "carry one line. ``notify: true`` also posts the change as an update, through the posting service.",
    ),
    *(
        Op("GET", f"/api/v2/{path}", summary, V2, {200: schema, 304: None}, auth=False)
        for path, (schema, summary) in V2_ENDPOINTS.items()
    ),
)
