"""The OpenAPI rows and answer schemas of inbound alerts, alert rules and drafts (``status_page/api/alerts.py``).

``openapi.document`` joins ``ALERT_OPERATIONS`` to ``openapi_operations.OPERATIONS`` and ``ALERT_SCHEMAS``
to the other schemas.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from broadcaster.alerts.rules import AlertRuleIn
from broadcaster.models import AlertSource, ComponentStatus, DraftKind, DraftState
from status_page.api.alerts import DraftPublishIn
from status_page.api.openapi_operations import BODY_ERRORS, IDEMPOTENCY, LIMIT, Op, Param, path_param
from status_page.api.openapi_schemas import (
    BOOLEAN,
    INTEGER,
    STRING,
    STRING_OR_NULL,
    TIME,
    TIME_OR_NULL,
    Schema,
    array,
    obj,
    ref,
)

ALERTS = "Alerts and drafts (v1)"


class AlertPayload(BaseModel):
    """The sender's own JSON payload, as it sends it (``docs/alerts.md`` has each sender's shape)."""

    model_config = ConfigDict(extra="allow", title="AlertPayload")


_COMPONENTS: Schema = {
    "type": "object",
    "additionalProperties": {"type": "string", "enum": [s.value for s in ComponentStatus]},
}
_INT_OR_NULL: Schema = {"type": ["integer", "null"]}

ALERT_SCHEMAS: dict[str, Schema] = {
    "AlertsReceived": obj(
        {
            "source": {"type": "string", "enum": [s.value for s in AlertSource]},
            "alerts": INTEGER,
            "matched": INTEGER,
            "drafts_created": array(STRING),
            "drafts_updated": array(STRING),
        },
        description="How many alerts the payload carried, how many a rule took, and the drafts they made or changed",
    ),
    "AlertRule": obj(
        {
            "id": STRING,
            "name": STRING,
            "source": {"type": "string", "enum": [s.value for s in AlertSource]},
            "match": {"type": "object", "additionalProperties": STRING},
            "components": _COMPONENTS,
            "template_id": STRING_OR_NULL,
            "title": STRING_OR_NULL,
            "message": STRING_OR_NULL,
            "playbook_id": STRING_OR_NULL,
            "level": _INT_OR_NULL,
            "auto_publish_after_s": _INT_OR_NULL,
            "created_at": TIME,
            "last_alert_at": TIME_OR_NULL,
            "webhook_path": STRING,
        }
    ),
    "AlertRuleList": array(ref("AlertRule")),
    "Draft": obj(
        {
            "id": STRING,
            "kind": {"type": "string", "enum": [k.value for k in DraftKind]},
            "state": {"type": "string", "enum": [s.value for s in DraftState]},
            "source": STRING,
            "rule_id": STRING_OR_NULL,
            "rule_name": STRING_OR_NULL,
            "incident_id": STRING_OR_NULL,
            "update_id": STRING_OR_NULL,
            "title": STRING_OR_NULL,
            "status": STRING,
            "message": STRING_OR_NULL,
            "components": _COMPONENTS,
            "body": {"type": "object", "description": "the post the draft holds (an incident, or an update)"},
            "alerts": array(
                obj(
                    {"fingerprint": STRING, "firing": BOOLEAN, "summary": STRING, "url": STRING_OR_NULL, "at": TIME},
                    required=["fingerprint", "firing", "summary"],
                )
            ),
            "first_alert_at": TIME,
            "last_alert_at": TIME,
            "publish_at": TIME_OR_NULL,
            "decided_at": TIME_OR_NULL,
            "decided_by": STRING_OR_NULL,
            "created_at": TIME,
            "updated_at": TIME,
            "console_url": STRING,
        }
    ),
    "DraftList": array(ref("Draft")),
    "DraftPublished": obj(
        {"incident_id": STRING, "update_id": STRING, "url": STRING, "draft": ref("Draft")},
    ),
}

ALERT_OPERATIONS: tuple[Op, ...] = (
    Op(
        "POST",
        "/api/v1/alerts/{source}",
        "Receive a monitoring system's alert webhook: matching alerts become drafts",
        ALERTS,
        {200: "AlertsReceived"},
        AlertPayload,
        (
            Param("source", "path", {"type": "string", "enum": [s.value for s in AlertSource]}),
            Param("token", "query", {"type": "string"}, "the source's secret, for senders that cannot set a header"),
            Param("X-PagerDuty-Signature", "header", {"type": "string"}, "PagerDuty: v1=<HMAC-SHA256 of the body>"),
        ),
        errors=(*BODY_ERRORS, 403, 404),
        description="PagerDuty is checked by ``X-PagerDuty-Signature`` against "
        "``BROADCASTER_PAGERDUTY_WEBHOOK_SECRET``; the other sources by a bearer token (commander or above) or "
        "their ``?token=`` secret (shown on the console's alert rules page). A duplicate delivery changes "
        "nothing; a payload that is not the sender's shape is a 422 naming the field.",
    ),
    Op("GET", "/api/v1/alert-rules", "Alert rules, in the order they are tried", ALERTS, {200: "AlertRuleList"}),
    Op(
        "POST",
        "/api/v1/alert-rules",
        "Add an alert rule: match on fields, propose components, words and a playbook level",
        ALERTS,
        {201: "AlertRule"},
        AlertRuleIn,
        errors=(*BODY_ERRORS, 403),
        description="``auto_publish_after_s`` lets the opening publish itself after that long without a human "
        "decision; only an investigating opening may.",
    ),
    Op(
        "DELETE",
        "/api/v1/alert-rules/{rule_id}",
        "Remove an alert rule (its drafts stay)",
        ALERTS,
        {204: None},
        params=(path_param("rule_id"),),
        errors=(403, 404),
    ),
    Op(
        "GET",
        "/api/v1/drafts",
        "Drafts proposed by alerts, newest first",
        ALERTS,
        {200: "DraftList"},
        params=(
            Param("state", "query", {"type": "string", "enum": [*(s.value for s in DraftState), "all"]}),
            LIMIT,
        ),
        errors=(400, 422),
    ),
    Op(
        "POST",
        "/api/v1/drafts/{draft_id}/publish",
        "Publish a draft through the posting service, as drafted or with a new title or message",
        ALERTS,
        {201: "DraftPublished"},
        DraftPublishIn,
        (path_param("draft_id"), IDEMPOTENCY),
        errors=(*BODY_ERRORS, 403, 404, 409),
        description="409 when the draft was published or discarded already (by anyone, the auto-publish "
        "cron included).",
    ),
    Op(
        "DELETE",
        "/api/v1/drafts/{draft_id}",
        "Discard a pending draft",
        ALERTS,
        {204: None},
        params=(path_param("draft_id"),),
        errors=(403, 404, 409),
    ),
)
