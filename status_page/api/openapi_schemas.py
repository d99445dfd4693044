"""JSON schemas of the API's answers (OpenAPI 3.1 ``components.schemas``), written against
what ``status_page/api/v1.py``, ``ops.py``, ``audit.py``, ``tokens.py``, ``channel_health.py`` and
``broadcaster/views/statuspage_v2.py`` return.

Objects list the keys every answer carries as ``required`` and leave ``additionalProperties``
open, so adding a field never breaks a client (or this document).
"""

from __future__ import annotations

from typing import Any

from broadcaster.models import ComponentStatus, Impact

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
STRING_OR_NULL: Schema = {"type": ["string", "null"]}
TIME: Schema = {"type": "string", "format": "date-time"}
TIME_OR_NULL: Schema = {"type": ["string", "null"], "format": "date-time"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: list[str] | None = None, description: str = "") -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }
    if description:
        schema["description"] = description
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


COMPONENT_STATUS: Schema = {"type": "string", "enum": [s.value for s in ComponentStatus]}
IMPACT: Schema = {"type": "string", "enum": [i.value for i in Impact]}

RESPONSE_SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {
            "error": obj(
                {
                    "code": {"type": "string", "description": "machine-readable, e.g. invalid_input, not_found"},
                    "message": STRING,
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "field name -> what is wrong with it",
                    },
                }
            )
        },
        description="Every 4xx answer of the API.",
    ),
    "Component": obj(
        {
            "id": STRING,
            "name": STRING,
            "description": STRING_OR_NULL,
            "status": COMPONENT_STATUS,
            "group": BOOLEAN,
            "group_id": STRING_OR_NULL,
            "position": {"type": ["integer", "null"]},
            "showcase": BOOLEAN,
            "only_show_if_degraded": BOOLEAN,
            "created_at": TIME,
            "updated_at": TIME,
        }
    ),
    "AffectedComponent": obj(
        {"code": STRING, "name": STRING_OR_NULL, "old_status": {"type": ["string", "null"]}, "new_status": STRING}
    ),
    "Update": obj(
        {
            "id": STRING,
            "incident_id": STRING,
            "number": INTEGER,
            "status": STRING,
            "body": STRING,
            "body_html": STRING,
            "created_at": TIME,
            "next_update_at": TIME_OR_NULL,
            "channels": {"type": ["array", "null"], "items": STRING},
            "agent": {"type": ["object", "null"]},
            "translations": {
                "type": "object",
                "additionalProperties": obj({"title": STRING, "message": STRING}, required=["message"]),
                "description": "language code -> the update in that language (title: the incident's, from here on)",
            },
            "author": STRING_OR_NULL,
            "affected_components": array(ref("AffectedComponent")),
        }
    ),
    "Incident": obj(
        {
            "id": STRING,
            "kind": {"type": "string", "enum": ["incident", "maintenance"]},
            "name": STRING,
            "status": STRING,
            "impact": IMPACT,
            "drill": BOOLEAN,
            "created_at": TIME,
            "updated_at": TIME,
            "started_at": TIME_OR_NULL,
            "monitoring_at": TIME_OR_NULL,
            "resolved_at": TIME_OR_NULL,
            "scheduled_for": TIME_OR_NULL,
            "scheduled_until": TIME_OR_NULL,
            "next_update_at": TIME_OR_NULL,
            "components": array(STRING),
            "auto_transition": BOOLEAN,
            "auto_start_message": STRING_OR_NULL,
            "auto_complete_message": STRING_OR_NULL,
            "remind_before_minutes": {"type": ["number", "null"]},
            "remind_at": TIME_OR_NULL,
            "rrule": STRING_OR_NULL,
            "sequence": INTEGER,
            "url": STRING,
            "updates": array(ref("Update")),
        }
    ),
    "MaintenanceEdited": {
        "allOf": [ref("Incident"), obj({"update": {"anyOf": [ref("Update"), {"type": "null"}]}})],
        "description": "The maintenance after the edit; ``update``: the update that told of it (null: a quiet edit).",
    },
    "IncidentCreated": {
        "allOf": [ref("Incident"), obj({"update": ref("Update")})],
        "description": "The incident, with its first update also under ``update``.",
    },
    "DeliveryCounts": {
        "type": "object",
        "description": "channel name -> counts of that channel's ledger rows",
        "additionalProperties": obj({"pending": INTEGER, "sent": INTEGER, "failed": INTEGER, "total": INTEGER}),
    },
    "Failure": {"type": "object", "required": ["updated_at"], "properties": {"updated_at": TIME_OR_NULL}},
    "Channel": obj(
        {
            "title": STRING,
            "kind": {"type": "string", "enum": ["broadcast", "subscriber"]},
            "enabled": BOOLEAN,
            "current_update": {
                "oneOf": [
                    {"type": "null"},
                    obj({"update_id": STRING, "incident_id": STRING, "number": INTEGER, "sent_at": TIME_OR_NULL}),
                ]
            },
            "copy": obj(
                {
                    "last_success_at": TIME_OR_NULL,
                    "lag_s": {"type": "number"},
                    "targets": array(
                        obj(
                            {
                                "target": STRING,
                                "last_success_at": TIME_OR_NULL,
                                "last_attempt_at": TIME_OR_NULL,
                                "failing_since": TIME_OR_NULL,
                                "last_error": STRING_OR_NULL,
                                "objects": INTEGER,
                                "lag_s": {"type": "number"},
                            }
                        )
                    ),
                },
                description="Only on a page copy (the mirror): its last successful push, and how long it has lagged",
            ),
        },
        required=["title", "kind", "enabled", "current_update"],
    ),
    "Channels": {
        "type": "object",
        "additionalProperties": ref("Channel"),
        "description": "channel name -> whether it is on and which update it shows now",
    },
    "Preview": {
        "type": "object",
        "additionalProperties": {"type": "object"},
        "description": "channel name -> the fields of that channel's exact rendition",
    },
    "Subscriber": obj(
        {
            "id": STRING,
            "channel": {
                "type": "string",
                "enum": ["email", "sms", "webhook", "slack", "teams", "discord", "google_chat"],
            },
            "address": STRING,
            "components": array(STRING),
            "language": {"type": ["string", "null"], "description": "null: the page's default language"},
            "confirmed": BOOLEAN,
            "created_at": TIME,
            "confirmed_at": TIME_OR_NULL,
            "unsubscribed_at": TIME_OR_NULL,
            "suppressed_reason": STRING_OR_NULL,
        }
    ),
    "SubscriberCreated": {
        "allOf": [
            ref("Subscriber"),
            {
                "type": "object",
                "properties": {
                    "secret": {
                        "type": "string",
                        "pattern": "^whsec_",
                        "description": "webhooks only, shown only in this answer",
                    }
                },
            },
        ]
    },
    "SubscriberList": obj({"subscribers": array(ref("Subscriber")), "total": INTEGER}),
    "SubscribersCsv": {
        "type": "string",
        "description": "CSV with the header channel,address,components,language,confirmed,created_at",
    },
    "DeadLetters": obj(
        {
            "total": INTEGER,
            "groups": {"description": "failed rows per update and channel"},
            "deliveries": array(
                {
                    "type": "object",
                    "required": ["id", "channel", "updated_at"],
                    "properties": {
                        "id": INTEGER,
                        "update_id": STRING,
                        "incident_id": STRING,
                        "channel": STRING,
                        "recipient": STRING_OR_NULL,
                        "address": STRING_OR_NULL,
                        "attempts": INTEGER,
                        "last_error": STRING_OR_NULL,
                        "updated_at": TIME_OR_NULL,
                    },
                }
            ),
        }
    ),
    "RetryStarted": obj({"reset": INTEGER, "batches": INTEGER}),
    "AuditEntry": obj(
        {
            "id": INTEGER,
            "actor": {"type": "string", "description": "user:NAME, token:NAME, cli:OSUSER or system:JOB"},
            "action": STRING,
            "target": STRING_OR_NULL,
            "details": {"type": "object"},
            "at": TIME,
        }
    ),
    "AuditPage": obj(
        {
            "entries": array(ref("AuditEntry")),
            "next_before": {
                "type": ["integer", "null"],
                "description": "send as ``before`` for the next, older page; null on the last page",
            },
        },
        description="Audit entries, newest first.",
    ),
    "Token": obj(
        {
            "id": STRING,
            "name": STRING,
            "role": STRING,
            "created_at": STRING,
            "last_used_at": STRING_OR_NULL,
            "expires_at": STRING_OR_NULL,
            "revoked_at": STRING_OR_NULL,
        },
        description="An API token as listed: never its secret or hash.",
    ),
    "TokenList": array(ref("Token")),
    "ChannelCheck": obj(
        {
            "channel": STRING,
            "title": STRING,
            "ok": {"type": ["boolean", "null"], "description": "null: skipped, or not checked yet"},
            "skipped": {"type": "boolean", "description": "no check: the channel's endpoints are the subscribers'"},
            "reason": {"type": ["string", "null"], "description": "the provider's reason, when failing"},
            "detail": {"type": ["string", "null"], "description": "what was verified, when passing"},
            **{name: TIME_OR_NULL for name in ("checked_at", "failing_since", "last_delivered_at")},
        }
    ),
    "ChannelHealth": obj(
        {"channels": array(ref("ChannelCheck")), "ok": BOOLEAN},
        description="Every enabled channel's pre-flight check; ``ok``: every channel with a check passed it.",
    ),
    # playbooks
    "PlaybookLevel": obj(
        {
            "level": INTEGER,
            "name": STRING,
            "title": STRING_OR_NULL,
            "status": STRING_OR_NULL,
            "impact": {"type": ["string", "null"]},
            "channels": {"type": ["array", "null"], "items": STRING},
            "cadence_minutes": {"type": ["integer", "null"]},
        },
        required=["level", "name"],
    ),
    "Playbook": obj(
        {
            "id": STRING,
            "name": STRING,
            "crisis_type": STRING_OR_NULL,
            "description": STRING_OR_NULL,
            "levels": array(ref("PlaybookLevel")),
        }
    ),
    "PlaybookList": array(ref("Playbook")),
    "TeamMember": obj(
        {
            "contact_id": STRING,
            "name": STRING,
            "role": STRING_OR_NULL,
            "level": {"type": ["integer", "null"]},
            "added_at": TIME_OR_NULL,
            "notified_at": TIME_OR_NULL,
            "notified_update_number": {"type": ["integer", "null"]},
            "acknowledged_at": TIME_OR_NULL,
        },
        required=["contact_id", "name"],
    ),
    "Team": array(ref("TeamMember")),
    "PlaybookIncident": {
        "allOf": [ref("Incident"), obj({"playbook_id": STRING, "level": INTEGER, "contacts": array(ref("TeamMember"))})]
    },
    "LevelRaised": obj(
        {"incident_id": STRING, "level": INTEGER, "added": array(STRING), "contacts": array(ref("TeamMember"))}
    ),
    "DrillReport": obj(
        {
            "incident_id": STRING,
            "time_to_first_update_s": {"type": ["number", "null"]},
            "updates": INTEGER,
            "intervals": array({"type": "object"}),
            "acknowledgements": array({"type": "object"}),
            "reach": {"type": "object"},
        },
        description="A playbook incident's (or drill's) figures, in seconds, from stored timestamps.",
    ),
    # Statuspage-compatible public v2
    "V2Page": obj({"id": STRING, "name": STRING, "url": STRING, "time_zone": STRING, "updated_at": TIME_OR_NULL}),
    "V2Status": obj(
        {
            "indicator": {"type": "string", "enum": ["none", "maintenance", "minor", "major", "critical"]},
            "description": STRING,
        }
    ),
    "V2Component": obj(
        {
            "id": STRING,
            "name": STRING,
            "status": COMPONENT_STATUS,
            "created_at": TIME,
            "updated_at": TIME,
            "position": {"type": ["integer", "null"]},
            "description": STRING_OR_NULL,
            "showcase": BOOLEAN,
            "start_date": STRING_OR_NULL,
            "group_id": STRING_OR_NULL,
            "page_id": STRING,
            "group": BOOLEAN,
            "only_show_if_degraded": BOOLEAN,
        }
    ),
    "V2IncidentUpdate": obj(
        {
            "id": STRING,
            "status": STRING,
            "body": STRING,
            "incident_id": STRING,
            "created_at": TIME,
            "updated_at": TIME,
            "display_at": TIME_OR_NULL,
            "affected_components": {"type": ["array", "null"], "items": {"type": "object"}},
            "deliver_notifications": BOOLEAN,
            "custom_tweet": {"type": "null"},
            "tweet_id": {"type": "null"},
        }
    ),
    "V2Incident": obj(
        {
            "id": STRING,
            "name": STRING,
            "status": STRING,
            "created_at": TIME,
            "updated_at": TIME,
            "monitoring_at": TIME_OR_NULL,
            "resolved_at": TIME_OR_NULL,
            "impact": IMPACT,
            "shortlink": STRING,
            "started_at": TIME_OR_NULL,
            "page_id": STRING,
            "incident_updates": array(ref("V2IncidentUpdate")),
            "components": array(ref("V2Component")),
            "reminder_intervals": {"type": "null"},
        }
    ),
}


def _page_and(**parts: Schema) -> Schema:
    return obj({"page": ref("V2Page"), **parts})


V2_SCHEMAS: dict[str, Schema] = {
    "V2Summary": _page_and(
        components=array(ref("V2Component")),
        incidents=array(ref("V2Incident")),
        scheduled_maintenances=array(ref("V2Incident")),
        status=ref("V2Status"),
    ),
    "V2StatusAnswer": _page_and(status=ref("V2Status")),
    "V2Components": _page_and(components=array(ref("V2Component"))),
    "V2Incidents": _page_and(incidents=array(ref("V2Incident"))),
    "V2Maintenances": _page_and(scheduled_maintenances=array(ref("V2Incident"))),
}
RESPONSE_SCHEMAS.update(V2_SCHEMAS)

# /api/v2/<path> -> (answer schema, summary)
V2_ENDPOINTS: dict[str, tuple[str, str]] = {
    "summary.json": ("V2Summary", "Page, components, unresolved incidents, maintenances and overall status"),
    "status.json": ("V2StatusAnswer", "The page's overall status indicator"),
    "components.json": ("V2Components", "Every component, groups included"),
    "incidents.json": ("V2Incidents", "The 50 most recent incidents"),
    "incidents/unresolved.json": ("V2Incidents", "Incidents not resolved yet"),
    "scheduled-maintenances.json": ("V2Maintenances", "The 50 most recent scheduled maintenances"),
    "scheduled-maintenances/upcoming.json": ("V2Maintenances", "Maintenances not started yet"),
    "scheduled-maintenances/active.json": ("V2Maintenances", "Maintenances in progress"),
}
