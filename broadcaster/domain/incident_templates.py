"""Incident templates: a crisis's first words written calmly in advance, pre-filling the compose form."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import incident_templates, new_id, utcnow
from broadcaster.errors import Conflict, NotFound
from broadcaster.models import Impact
from broadcaster.schemas import MAX_MESSAGE_CHARS, AgentNotesIn, Strict, check_status

Row = dict[str, Any]


class TemplateIn(Strict):
    """A template as created or edited in the console."""

    name: str = Field(min_length=1, max_length=255)
    crisis_type: str | None = Field(default=None, max_length=64)
    title: str = Field(min_length=1, max_length=255)
    status: str = "investigating"
    impact: Impact | None = None
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    agent: AgentNotesIn = Field(default_factory=AgentNotesIn)
    channels: list[str] | None = Field(default=None, max_length=50)
    next_update_in_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)


def _answers(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"question": q, "answer": a} for q, a in pairs]


SEED_TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "name": "Service outage",
        "crisis_type": "outage",
        "title": "Service unavailable",
        "status": "investigating",
        "impact": "major",
        "next_update_in_minutes": 30,
        "message": "We are investigating reports that the service is unavailable for some customers. "
        "Our engineers are working on it now. We will post an update within 30 minutes.",
        "agent": {
            "talking_points": "We know about the problem and engineers are on it. No action is needed "
            "from the customer. Updates are posted on the status page.",
            "approved_answers": _answers(
                ("When will it be fixed?", "We don't have a time yet; the next update is due within 30 minutes."),
                ("Is my data safe?", "We have no indication that any data is affected."),
            ),
            "do_not_say": "Do not guess the cause or promise a fix time.",
            "escalation": "Customers reporting data loss: escalate to the incident commander.",
        },
    },
    {
        "name": "Product recall",
        "crisis_type": "recall",
        "title": "Safety recall of a product",
        "status": "identified",
        "impact": "major",
        "next_update_in_minutes": 120,
        "message": "We are recalling a product because of a safety issue. Please stop using it now. "
        "The status page lists the affected batches and how to get a refund or replacement.",
        "agent": {
            "talking_points": "Safety first: tell the customer to stop using the product. Refund or "
            "replacement is free. Take their batch number.",
            "approved_answers": _answers(
                ("Was anyone hurt?", "We are not able to discuss individual cases; safety is our priority."),
                ("How do I get my money back?", "Return the product or send us the batch number for a full refund."),
            ),
            "do_not_say": "Do not speculate about injuries, liability or the supplier.",
            "escalation": "Any report of injury: transfer to the product safety team immediately.",
        },
    },
    {
        "name": "Security breach",
        "crisis_type": "security",
        "title": "Security incident under investigation",
        "status": "investigating",
        "impact": "critical",
        "next_update_in_minutes": 60,
        "message": "We are investigating a security incident. As a precaution, we recommend that you change "
        "your password. We will share what we learn as soon as we can confirm it.",
        "agent": {
            "talking_points": "Recommend a password change and enabling two-factor authentication. We will "
            "contact affected customers directly.",
            "approved_answers": _answers(
                ("Was my data stolen?", "We are still investigating; affected customers will be contacted directly."),
                ("What should I do?", "Change your password and turn on two-factor authentication."),
            ),
            "do_not_say": "Do not confirm or deny what data was accessed. Do not name suspects.",
            "escalation": "Journalists and regulators: refer to the communications team.",
        },
    },
    {
        "name": "Natural disaster",
        "crisis_type": "natural_disaster",
        "title": "Service affected by severe weather",
        "status": "identified",
        "impact": "major",
        "next_update_in_minutes": 60,
        "message": "Severe weather in the region is affecting our operations. Services and deliveries in the "
        "affected area may be delayed. Staff and customer safety comes first.",
        "agent": {
            "talking_points": "Delays are expected in the affected region. Follow local authorities' advice.",
            "approved_answers": _answers(
                ("Will my order arrive?", "Orders to the affected area may be delayed; we will keep you informed.")
            ),
            "do_not_say": "Do not promise delivery dates in the affected area.",
            "escalation": "Urgent medical or safety needs: direct to local emergency services.",
        },
    },
    {
        "name": "Supply disruption",
        "crisis_type": "supply",
        "title": "Supply disruption",
        "status": "identified",
        "impact": "minor",
        "next_update_in_minutes": 240,
        "message": "A disruption at one of our suppliers is delaying some products. Orders already placed "
        "will ship as soon as stock arrives. We will update this page when supply is restored.",
        "agent": {
            "talking_points": "Some items are delayed; existing orders are kept in line. Cancellation is free.",
            "approved_answers": _answers(
                ("Can I cancel my order?", "Yes, free of charge, at any time before it ships.")
            ),
            "do_not_say": "Do not name the supplier.",
            "escalation": "Business customers with contractual deadlines: account management.",
        },
    },
)


async def list_templates(conn: AsyncConnection) -> list[Row]:
    result = await conn.execute(select(incident_templates).order_by(incident_templates.c.name))
    return [dict(r) for r in result.mappings()]


async def get_template(conn: AsyncConnection, template_id: str) -> Row:
    row = (
        (await conn.execute(select(incident_templates).where(incident_templates.c.id == template_id)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("no such template", {"template_id": f"unknown template {template_id!r}"})
    return dict(row)


def _values(data: TemplateIn) -> dict[str, Any]:
    check_status("incident", data.status)
    return {
        "name": data.name,
        "crisis_type": data.crisis_type,
        "title": data.title,
        "status": data.status,
        "impact": data.impact.value if data.impact else None,
        "message": data.message,
        "agent": data.agent.model_dump(),
        "channels": data.channels,
        "next_update_in_minutes": data.next_update_in_minutes,
    }


async def _name_taken(conn: AsyncConnection, name: str, other_than: str | None = None) -> bool:
    query = select(incident_templates.c.id).where(incident_templates.c.name == name)
    if other_than:
        query = query.where(incident_templates.c.id != other_than)
    return (await conn.execute(query)).first() is not None


async def create_template(conn: AsyncConnection, data: TemplateIn) -> Row:
    if await _name_taken(conn, data.name):
        raise Conflict("template exists", {"name": "already taken"})
    now = utcnow()
    template_id = new_id()
    await conn.execute(
        incident_templates.insert().values(id=template_id, created_at=now, updated_at=now, **_values(data))
    )
    return await get_template(conn, template_id)


async def update_template(conn: AsyncConnection, template_id: str, data: TemplateIn) -> Row:
    await get_template(conn, template_id)
    if await _name_taken(conn, data.name, other_than=template_id):
        raise Conflict("template exists", {"name": "already taken"})
    await conn.execute(
        incident_templates.update()
        .where(incident_templates.c.id == template_id)
        .values(updated_at=utcnow(), **_values(data))
    )
    return await get_template(conn, template_id)


async def delete_template(conn: AsyncConnection, template_id: str) -> None:
    await get_template(conn, template_id)
    await conn.execute(incident_templates.delete().where(incident_templates.c.id == template_id))


async def seed_templates(conn: AsyncConnection) -> int:
    """Add the built-in crisis templates that are missing (by name); returns how many were added."""
    added = 0
    for seed in SEED_TEMPLATES:
        if not await _name_taken(conn, seed["name"]):
            await create_template(conn, TemplateIn.model_validate(seed))
            added += 1
    return added
