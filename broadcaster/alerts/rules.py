"""Alert rules: which alert (by source and fields) means which components, words and playbook level.

A rule matches when every one of its ``match`` pairs holds (``sources.matches``); an alert is taken by
the first matching rule of its source, oldest first, and an alert no rule matches is ignored. The
draft a rule proposes is the incident template's (``template_id``) with the rule's ``title`` and
``message`` over it, or a playbook level's opening (``playbook_id`` + ``level``: its words, channels,
cadence, and its contact list once published), and the rule's ``components`` with their status.
``auto_publish_after_s`` publishes the opening by itself after that long without a human decision;
only an "investigating" opening may do that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.alerts.sources import Alert
from broadcaster.crisis import playbooks
from broadcaster.db import alert_rules, components, new_id, utcnow
from broadcaster.domain import incident_templates
from broadcaster.errors import InputError, NotFound
from broadcaster.models import AlertSource, ComponentStatus, IncidentStatus
from broadcaster.render import iso
from broadcaster.schemas import MAX_MESSAGE_CHARS, Strict

Row = dict[str, Any]
MAX_MATCH_PAIRS = 20
MAX_AUTO_PUBLISH_S = 24 * 3600


class AlertRuleIn(Strict):
    """``POST /api/v1/alert-rules``: a source, what to match, and what the draft says and changes."""

    source: AlertSource
    name: str | None = Field(default=None, min_length=1, max_length=255)
    match: dict[str, str] = Field(default_factory=dict, max_length=MAX_MATCH_PAIRS)
    components: dict[str, ComponentStatus] = Field(default_factory=dict, max_length=500)
    template_id: str | None = Field(default=None, max_length=32)
    title: str | None = Field(default=None, min_length=1, max_length=255)
    message: str | None = Field(default=None, min_length=1, max_length=MAX_MESSAGE_CHARS)
    playbook_id: str | None = Field(default=None, max_length=32)
    level: int | None = Field(default=None, ge=1, le=playbooks.MAX_LEVELS)
    auto_publish_after_s: int | None = Field(default=None, ge=0, le=MAX_AUTO_PUBLISH_S)

    @field_validator("match")
    @classmethod
    def _pairs(cls, value: dict[str, str]) -> dict[str, str]:
        for key, wanted in value.items():
            if not key.strip() or len(key) > 128 or not wanted.strip() or len(wanted) > 255:
                raise ValueError("each pair is a field (1-128 characters) and a value (1-255 characters)")
        return {key.strip(): wanted.strip() for key, wanted in value.items()}


def rule_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A rule as the API answers it."""
    return {
        "id": row["id"],
        "name": row["name"],
        "source": row["source"],
        "match": dict(row["match"] or {}),
        "components": dict(row["components"] or {}),
        "template_id": row["template_id"],
        "title": row["title"],
        "message": row["message"],
        "playbook_id": row["playbook_id"],
        "level": row["level"],
        "auto_publish_after_s": row["auto_publish_after_s"],
        "created_at": iso(row["created_at"]),
        "last_alert_at": iso(row["last_alert_at"]),
        "webhook_path": f"/api/v1/alerts/{row['source']}",
    }


async def _opening_status(conn: AsyncConnection, data: AlertRuleIn) -> str:
    """The status the rule's opening draft gets; refuses references that name nothing."""
    if data.playbook_id is not None or data.level is not None:
        if data.playbook_id is None or data.level is None:
            missing = "playbook_id" if data.playbook_id is None else "level"
            raise InputError("a playbook rule needs both", {missing: "required with the other"})
        try:
            book = await playbooks.get_playbook(conn, data.playbook_id)
        except NotFound as exc:
            raise InputError(exc.message, exc.fields) from None
        return str(playbooks.get_level(book, data.level)["status"])
    if data.template_id is not None:
        try:
            return str((await incident_templates.get_template(conn, data.template_id))["status"])
        except NotFound as exc:
            raise InputError(exc.message, exc.fields) from None
    return IncidentStatus.INVESTIGATING.value


async def _check_components(conn: AsyncConnection, ids: list[str]) -> None:
    if not ids:
        return
    known = set((await conn.execute(select(components.c.id).where(components.c.id.in_(ids)))).scalars())
    unknown = [c for c in ids if c not in known]
    if unknown:
        raise InputError("unknown components", {"components": f"no such component: {', '.join(unknown)}"})


def default_name(data: AlertRuleIn) -> str:
    pairs = ", ".join(f"{k}={v}" for k, v in sorted(data.match.items())) or "every alert"
    return f"{data.source.value}: {pairs}"[:255]


async def save_rule(conn: AsyncConnection, data: AlertRuleIn, rule_id: str | None = None) -> Row:
    """Store a new rule (or replace ``rule_id``'s) after checking what it names (components, template, level)."""
    await _check_components(conn, list(data.components))
    status = await _opening_status(conn, data)
    if data.auto_publish_after_s is not None and status != IncidentStatus.INVESTIGATING.value:
        raise InputError(
            "only an investigating opening may publish itself",
            {"auto_publish_after_s": f"the opening's status is {status}; auto-publishing posts only investigating"},
        )
    values = {
        "name": data.name or default_name(data),
        "source": data.source.value,
        "match": data.match,
        "components": {k: v.value for k, v in data.components.items()},
        "template_id": data.template_id,
        "title": data.title,
        "message": data.message,
        "playbook_id": data.playbook_id,
        "level": data.level,
        "auto_publish_after_s": data.auto_publish_after_s,
    }
    if rule_id is None:
        rule_id = new_id()
        await conn.execute(alert_rules.insert().values(id=rule_id, created_at=utcnow(), **values))
    else:
        await conn.execute(alert_rules.update().where(alert_rules.c.id == rule_id).values(**values))
    return await get_rule(conn, rule_id)


async def list_rules(conn: AsyncConnection, source: AlertSource | None = None) -> list[Row]:
    """Rules oldest first (the order they are tried in), of one source or all."""
    query = select(alert_rules).order_by(alert_rules.c.created_at, alert_rules.c.id)
    if source is not None:
        query = query.where(alert_rules.c.source == source.value)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def get_rule(conn: AsyncConnection, rule_id: str) -> Row:
    row = (await conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id))).mappings().first()
    if row is None:
        raise NotFound("no such alert rule", {"rule_id": f"unknown rule {rule_id!r}"})
    return dict(row)


async def delete_rule(conn: AsyncConnection, rule_id: str) -> Row:
    row = await get_rule(conn, rule_id)
    await conn.execute(alert_rules.delete().where(alert_rules.c.id == rule_id))
    return row


async def opening_body(conn: AsyncConnection, rule: Mapping[str, Any], alert: Alert) -> dict[str, Any]:
    """The post an opening draft holds: a playbook level's opening, or the template's incident, with the rule's
    words and components; without either, the alert's own summary in plain words."""
    chosen = dict(rule["components"] or {})
    if rule["playbook_id"] and rule["level"]:
        level = playbooks.get_level(await playbooks.get_playbook(conn, rule["playbook_id"]), rule["level"])
        return {
            "playbook_id": rule["playbook_id"],
            "level": rule["level"],
            "title": rule["title"] or level["title"],
            "status": level["status"],
            "message": rule["message"] or level["message"],
            "components": chosen,
        }
    template: Row | None = None
    if rule["template_id"]:
        try:
            template = await incident_templates.get_template(conn, rule["template_id"])
        except NotFound:
            template = None  # deleted since: the rule's own words, else the alert's
    body = {
        "title": rule["title"] or (template or {}).get("title") or f"Investigating: {alert.summary}"[:255],
        "status": (template or {}).get("status") or IncidentStatus.INVESTIGATING.value,
        "message": rule["message"]
        or (template or {}).get("message")
        or f"We are investigating a problem: {alert.summary}. We will post an update as soon as we know more.",
        "components": chosen,
    }
    if template is not None:
        body["template_id"] = template["id"]
        body.update({k: template[k] for k in ("impact", "channels", "next_update_in_minutes") if template[k]})
        if template["agent"]:
            body["agent"] = template["agent"]
    return body


def resolve_body() -> dict[str, Any]:
    """The resolve a resolved alert proposes: the incident closes and its components return to operational."""
    return {
        "status": IncidentStatus.RESOLVED.value,
        "message": "This incident is resolved: everything affected is working normally again. "
        "We are sorry for the disruption.",
    }
