"""Each sender's alert payload read into ``Alert`` values: what fired or resolved, and the fields rules match.

- **Alertmanager** (``webhook_config``, payload version 4) and **Grafana** alerting (its webhook contact
  point, the same shape with extras): one ``Alert`` per entry of ``alerts``; fields are the labels, and
  each annotation as ``annotations.<name>``; the fingerprint is the alert's own (else its labels').
- **PagerDuty** v3 webhooks: ``incident.*`` events; ``incident.resolved`` resolves, the others that mean
  the incident is open (triggered, acknowledged, escalated, ...) fire; fields ``event_type``, ``status``,
  ``urgency``, ``service``, ``priority``, ``title``, ``escalation_policy``, ``teams``; fingerprint the
  PagerDuty incident id.
- **Opsgenie** webhook integration: ``Create`` (and acknowledge, escalate) fire, ``Close`` and ``Delete``
  resolve; fields ``action``, ``priority``, ``entity``, ``source``, ``message``, ``alias``, ``tags`` and each
  of ``details``; fingerprint the alias (Opsgenie's own de-duplication key), else the alert id.
- **Uptime Kuma** webhook notification: heartbeat status 0 (down) fires, 1 (up) resolves; fields
  ``monitor``, ``url``, ``hostname``, ``type``, ``status`` and each tag as ``name: value``; its test
  notification (no heartbeat) carries no alert.
- **Gatus** custom alert provider, with the body ``docs/alerts.md`` gives: ``status`` TRIGGERED/RESOLVED
  (or firing/resolved); fields ``name``, ``group``, ``url``, ``description``.

A payload that is not the sender's shape is an ``InputError`` naming the field (a 4xx, nothing stored).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from broadcaster.errors import InputError
from broadcaster.models import AlertSource

FieldValue = str | tuple[str, ...]
MAX_ALERTS = 500  # per payload; Alertmanager's max_alerts bounds its side
MAX_FIELD_CHARS = 1000

PAGERDUTY_OPEN = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.escalated",
        "incident.reassigned",
        "incident.reopened",
        "incident.delegated",
        "incident.priority_updated",
        "incident.responder.added",
    }
)
OPSGENIE_OPEN = frozenset({"Create", "Acknowledge", "UnAcknowledge", "Escalate", "EscalateNext"})
OPSGENIE_CLOSED = frozenset({"Close", "Delete"})
UPTIME_KUMA_DOWN, UPTIME_KUMA_UP = 0, 1


@dataclass(frozen=True)
class Alert:
    """One alert as a sender reported it: firing or resolved, with the fields rules match on."""

    fingerprint: str
    firing: bool
    summary: str
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    url: str | None = None


def _bad(where: str, reason: str) -> InputError:
    return InputError("not an alert payload this source sends", {where: reason})


def _object(value: Any, where: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, "required: an object" if value is None else "must be an object")
    return value


def _text(value: Any, where: str, *, required: bool = False) -> str:
    """A scalar as text (numbers and booleans too); "" for nothing, unless required."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, int | float):
        value = str(value)
    if value is None or value == "":
        if required:
            raise _bad(where, "required: a non-empty string")
        return ""
    if not isinstance(value, str):
        raise _bad(where, "must be a string")
    return value[:MAX_FIELD_CHARS]


def _scalars(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, FieldValue]:
    """The mapping's scalar values as text (nested objects and lists are not matched on)."""
    out: dict[str, FieldValue] = {}
    for key, value in mapping.items():
        if isinstance(value, str | int | float | bool) and not isinstance(key, bool):
            out[f"{prefix}{key}"[:MAX_FIELD_CHARS]] = _text(value, key)
    return out


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(where, "required: a list" if value is None else "must be a list")
    if len(value) > MAX_ALERTS:
        raise _bad(where, f"at most {MAX_ALERTS} alerts in one payload")
    return value


def _items(value: Any) -> list[Any]:
    """A list the sender may leave out (tags, teams): [] when it is not a list."""
    return value if isinstance(value, list) else []


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _summary(*candidates: str) -> str:
    return next((c for c in candidates if c), "an alert")[:255]


def alertmanager(body: Mapping[str, Any]) -> list[Alert]:
    """Prometheus Alertmanager's webhook payload (version 4); Grafana's contact point sends the same shape."""
    alerts = []
    for i, item in enumerate(_list(body.get("alerts"), "alerts")):
        where = f"alerts.{i}"
        entry = _object(item, where)
        status = _text(entry.get("status"), f"{where}.status", required=True)
        if status not in ("firing", "resolved"):
            raise _bad(f"{where}.status", "must be firing or resolved")
        labels = _scalars(_object(entry.get("labels"), f"{where}.labels"))
        annotations = _object(entry.get("annotations"), f"{where}.annotations", required=False)
        fingerprint = _text(entry.get("fingerprint"), f"{where}.fingerprint") or _digest(sorted(labels.items()))
        notes = _scalars(annotations)
        alerts.append(
            Alert(
                fingerprint=fingerprint,
                firing=status == "firing",
                summary=_summary(str(notes.get("summary", "")), str(labels.get("alertname", ""))),
                fields={**labels, **_scalars(annotations, "annotations.")},
                url=_text(entry.get("generatorURL"), f"{where}.generatorURL") or None,
            )
        )
    return alerts


def pagerduty(body: Mapping[str, Any]) -> list[Alert]:
    """A PagerDuty v3 webhook event; events that are not about an incident's being open or resolved carry none."""
    event = _object(body.get("event"), "event")
    event_type = _text(event.get("event_type"), "event.event_type", required=True)
    if event_type != "incident.resolved" and event_type not in PAGERDUTY_OPEN:
        return []  # pagey.ping, annotations, status updates, services...
    data = _object(event.get("data"), "event.data")
    incident_id = _text(data.get("id"), "event.data.id", required=True)
    title = _text(data.get("title"), "event.data.title")

    def summary_of(key: str) -> str:
        return _text(_object(data.get(key), f"event.data.{key}", required=False).get("summary"), key)

    fields: dict[str, FieldValue] = {
        "event_type": event_type,
        "status": _text(data.get("status"), "event.data.status"),
        "urgency": _text(data.get("urgency"), "event.data.urgency"),
        "title": title,
        "service": summary_of("service"),
        "priority": summary_of("priority"),
        "escalation_policy": summary_of("escalation_policy"),
        "teams": tuple(_text(t.get("summary"), "teams") for t in _items(data.get("teams")) if isinstance(t, dict)),
    }
    return [
        Alert(
            fingerprint=incident_id,
            firing=event_type != "incident.resolved",
            summary=_summary(title, incident_id),
            fields=fields,
            url=_text(data.get("html_url"), "event.data.html_url") or None,
        )
    ]


def opsgenie(body: Mapping[str, Any]) -> list[Alert]:
    """An Opsgenie webhook integration call; actions that neither open nor close an alert carry none."""
    action = _text(body.get("action"), "action", required=True)
    alert = _object(body.get("alert"), "alert")
    alert_id = _text(alert.get("alertId"), "alert.alertId", required=True)
    if action not in OPSGENIE_OPEN and action not in OPSGENIE_CLOSED:
        return []
    details = _object(alert.get("details"), "alert.details", required=False)
    message = _text(alert.get("message"), "alert.message")
    fields: dict[str, FieldValue] = {
        **_scalars(details),
        "action": action,
        "priority": _text(alert.get("priority"), "alert.priority"),
        "entity": _text(alert.get("entity"), "alert.entity"),
        "source": _text(alert.get("source"), "alert.source"),
        "message": message,
        "alias": _text(alert.get("alias"), "alert.alias"),
        "tags": tuple(str(t)[:MAX_FIELD_CHARS] for t in _items(alert.get("tags")) if isinstance(t, str)),
    }
    return [
        Alert(
            fingerprint=str(fields["alias"]) or alert_id,
            firing=action in OPSGENIE_OPEN,
            summary=_summary(message, alert_id),
            fields=fields,
        )
    ]


def uptime_kuma(body: Mapping[str, Any]) -> list[Alert]:
    """Uptime Kuma's webhook notification (application/json); the test notification carries no alert."""
    if body.get("heartbeat") is None:
        return []
    heartbeat = _object(body.get("heartbeat"), "heartbeat")
    status = heartbeat.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 3:
        raise _bad("heartbeat.status", "must be 0 (down), 1 (up), 2 (pending) or 3 (maintenance)")
    if status not in (UPTIME_KUMA_DOWN, UPTIME_KUMA_UP):
        return []
    monitor = _object(body.get("monitor"), "monitor")
    monitor_id = _text(monitor.get("id"), "monitor.id", required=True)
    name = _text(monitor.get("name"), "monitor.name")
    fields: dict[str, FieldValue] = {
        "monitor": name,
        "url": _text(monitor.get("url"), "monitor.url"),
        "hostname": _text(monitor.get("hostname"), "monitor.hostname"),
        "type": _text(monitor.get("type"), "monitor.type"),
        "status": "down" if status == UPTIME_KUMA_DOWN else "up",
    }
    for tag in _items(monitor.get("tags")):
        if isinstance(tag, dict) and isinstance(tag.get("name"), str):
            fields.setdefault(tag["name"][:MAX_FIELD_CHARS], _text(tag.get("value"), "monitor.tags"))
    return [
        Alert(
            fingerprint=f"monitor:{monitor_id}",
            firing=status == UPTIME_KUMA_DOWN,
            summary=_summary(f"{name}: {_text(heartbeat.get('msg'), 'heartbeat.msg')}".strip(": "), monitor_id),
            fields=fields,
            url=str(fields["url"]) or None,
        )
    ]


def gatus(body: Mapping[str, Any]) -> list[Alert]:
    """Gatus's custom alert provider with the body of ``docs/alerts.md``."""
    name = _text(body.get("endpoint_name"), "endpoint_name", required=True)
    status = _text(body.get("status"), "status", required=True).lower()
    if status not in ("triggered", "firing", "resolved"):
        raise _bad("status", "must be TRIGGERED or RESOLVED ([ALERT_TRIGGERED_OR_RESOLVED])")
    group = _text(body.get("endpoint_group"), "endpoint_group")
    description = _text(body.get("alert_description"), "alert_description")
    fields: dict[str, FieldValue] = {
        "name": name,
        "group": group,
        "url": _text(body.get("endpoint_url"), "endpoint_url"),
        "description": description,
    }
    key = f"{group}/{name}" if group else name
    return [
        Alert(
            fingerprint=key,
            firing=status != "resolved",
            summary=_summary(f"{key}: {description}" if description else key),
            fields=fields,
            url=str(fields["url"]) or None,
        )
    ]


PARSERS: dict[AlertSource, Callable[[Mapping[str, Any]], list[Alert]]] = {
    AlertSource.ALERTMANAGER: alertmanager,
    AlertSource.GRAFANA: alertmanager,
    AlertSource.PAGERDUTY: pagerduty,
    AlertSource.OPSGENIE: opsgenie,
    AlertSource.UPTIME_KUMA: uptime_kuma,
    AlertSource.GATUS: gatus,
}


def parse(source: AlertSource, body: Mapping[str, Any]) -> list[Alert]:
    """The alerts in ``body`` as ``source`` sends them; ``InputError`` naming the field when it is not its shape."""
    return PARSERS[source](body)


def matches(alert: Alert, match: Mapping[str, str]) -> bool:
    """Whether every ``field: value`` pair holds (case-insensitive; a list field holds when it contains the value;
    ``*`` holds when the field is there and not empty)."""
    for name, wanted in match.items():
        value = alert.fields.get(name)
        if not value:
            return False
        if wanted == "*":
            continue
        values = value if isinstance(value, tuple) else (value,)
        if wanted.casefold() not in {v.casefold() for v in values}:
            return False
    return True
