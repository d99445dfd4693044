"""Crisis playbooks: each possible crisis written down before it happens, level by level.

A playbook is a crisis type (outage, security breach, product recall, natural disaster,
supply disruption, PR incident, or the organisation's own) with severity levels. A level
carries the incident template (title, status, impact, message, talking points, approved
answers, escalation), the public channels it uses by default, the promised update cadence
and the internal contacts to notify (``broadcaster.crisis.contacts``).

``plan_opening`` says what opening a level posts: the level's template (as a drill when
asked) with ``meta = {playbook_id, level}``, and the level's contacts, which
``broadcaster.posting`` puts on the incident in the same transaction, so the post hook
notifies them at once.
``raise_level`` escalates an open incident: the new level's contacts are added and only
they are notified.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.actors import Actor
from broadcaster.crisis import contacts
from broadcaster.db import contact_assignments, incidents, new_id, playbook_levels, playbooks, updates, utcnow
from broadcaster.domain import audit
from broadcaster.domain.incidents import get_incident_row
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.jobs import contact_notices
from broadcaster.models import CLOSED_STATUSES, ComponentStatus, Impact
from broadcaster.post_requests import NewIncident
from broadcaster.runtime import Runtime
from broadcaster.schemas import MAX_MESSAGE_CHARS, AgentNotesIn, IncidentIn, Strict, check_status, validate

Row = dict[str, Any]
MAX_LEVELS = 10


class CrisisType(StrEnum):
    OUTAGE = "outage"
    SECURITY_BREACH = "security_breach"
    PRODUCT_RECALL = "product_recall"
    NATURAL_DISASTER = "natural_disaster"
    SUPPLY_DISRUPTION = "supply_disruption"
    PR_INCIDENT = "pr_incident"
    CUSTOM = "custom"


class LevelIn(Strict):
    """One severity level of a playbook."""

    level: int = Field(ge=1, le=MAX_LEVELS)
    name: str = Field(min_length=1, max_length=255)
    title: str = Field(min_length=1, max_length=255)
    status: str = "investigating"
    impact: Impact | None = None
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    agent: AgentNotesIn = Field(default_factory=AgentNotesIn)
    channels: list[str] = Field(default_factory=list, max_length=50)
    cadence_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)


class PlaybookIn(Strict):
    name: str = Field(min_length=1, max_length=255)
    crisis_type: CrisisType = CrisisType.CUSTOM
    description: str = Field(default="", max_length=5000)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class OpenIn(Strict):
    """``POST /api/v1/playbooks/{id}/open``: the level, and what to change from its template."""

    level: int = Field(ge=1, le=MAX_LEVELS)
    drill: bool = False
    title: str | None = Field(default=None, min_length=1, max_length=255)
    message: str | None = Field(default=None, min_length=1, max_length=MAX_MESSAGE_CHARS)
    status: str | None = None
    impact: Impact | None = None
    components: dict[str, ComponentStatus] = Field(default_factory=dict, max_length=500)
    channels: list[str] | None = Field(default=None, max_length=50)
    next_update_in_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)


# --- playbooks and levels -----------------------------------------------------------------------


async def list_playbooks(conn: AsyncConnection) -> list[Row]:
    result = await conn.execute(select(playbooks).order_by(playbooks.c.name))
    rows = [dict(r) for r in result.mappings()]
    levels = await _levels_by_playbook(conn, [r["id"] for r in rows])
    for row in rows:
        row["levels"] = levels[row["id"]]
    return rows


async def _levels_by_playbook(conn: AsyncConnection, ids: list[str]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {i: [] for i in ids}
    if ids:
        result = await conn.execute(
            select(playbook_levels).where(playbook_levels.c.playbook_id.in_(ids)).order_by(playbook_levels.c.level)
        )
        for r in result.mappings():
            grouped[r["playbook_id"]].append(dict(r))
    return grouped


async def get_playbook(conn: AsyncConnection, playbook_id: str) -> Row:
    """The playbook with its ``levels`` (each with its ``contacts``)."""
    row = (await conn.execute(select(playbooks).where(playbooks.c.id == playbook_id))).mappings().first()
    if row is None:
        raise NotFound("no such playbook", {"playbook_id": f"unknown playbook {playbook_id!r}"})
    playbook = dict(row)
    playbook["levels"] = (await _levels_by_playbook(conn, [playbook_id]))[playbook_id]
    people = await contacts.level_contacts(conn, playbook_id)
    for level in playbook["levels"]:
        level["contacts"] = [c for c in people if c["level"] == level["level"]]
    return playbook


async def find_playbook(conn: AsyncConnection, name: str) -> Row | None:
    row = (await conn.execute(select(playbooks.c.id).where(playbooks.c.name == name))).first()
    return await get_playbook(conn, str(row[0])) if row else None


def get_level(playbook: Row, level: int) -> Row:
    for row in playbook["levels"]:
        if row["level"] == level:
            return dict(row)
    known = ", ".join(str(r["level"]) for r in playbook["levels"]) or "none"
    raise InputError("no such level", {"level": f"{playbook['name']!r} has levels {known}"})


async def create_playbook(conn: AsyncConnection, data: PlaybookIn) -> Row:
    if await find_playbook(conn, data.name):
        raise Conflict("playbook exists", {"name": "already taken"})
    now = utcnow()
    playbook_id = new_id()
    await conn.execute(
        playbooks.insert().values(
            id=playbook_id,
            name=data.name,
            crisis_type=data.crisis_type.value,
            description=data.description,
            created_at=now,
            updated_at=now,
        )
    )
    return await get_playbook(conn, playbook_id)


async def update_playbook(conn: AsyncConnection, playbook_id: str, data: PlaybookIn) -> Row:
    await get_playbook(conn, playbook_id)
    other = await find_playbook(conn, data.name)
    if other and other["id"] != playbook_id:
        raise Conflict("playbook exists", {"name": "already taken"})
    await conn.execute(
        playbooks.update()
        .where(playbooks.c.id == playbook_id)
        .values(name=data.name, crisis_type=data.crisis_type.value, description=data.description, updated_at=utcnow())
    )
    return await get_playbook(conn, playbook_id)


async def delete_playbook(conn: AsyncConnection, playbook_id: str) -> Row:
    row = await get_playbook(conn, playbook_id)
    await conn.execute(playbooks.delete().where(playbooks.c.id == playbook_id))
    return row


async def save_level(conn: AsyncConnection, playbook_id: str, data: LevelIn) -> None:
    """Create or replace one level (its contact list is kept)."""
    check_status("incident", data.status)
    await get_playbook(conn, playbook_id)
    values = {
        "name": data.name,
        "title": data.title,
        "status": data.status,
        "impact": data.impact.value if data.impact else None,
        "message": data.message,
        "agent": data.agent.model_dump(),
        "channels": list(dict.fromkeys(data.channels)),
        "cadence_minutes": data.cadence_minutes,
    }
    where = (playbook_levels.c.playbook_id == playbook_id) & (playbook_levels.c.level == data.level)
    exists = (await conn.execute(select(playbook_levels.c.level).where(where))).first()
    if exists:
        await conn.execute(playbook_levels.update().where(where).values(**values))
    else:
        await conn.execute(playbook_levels.insert().values(playbook_id=playbook_id, level=data.level, **values))
    await conn.execute(playbooks.update().where(playbooks.c.id == playbook_id).values(updated_at=utcnow()))


async def delete_level(conn: AsyncConnection, playbook_id: str, level: int) -> None:
    get_level(await get_playbook(conn, playbook_id), level)
    await conn.execute(
        playbook_levels.delete().where(playbook_levels.c.playbook_id == playbook_id, playbook_levels.c.level == level)
    )
    await conn.execute(
        contact_assignments.delete().where(
            contact_assignments.c.playbook_id == playbook_id, contact_assignments.c.level == level
        )
    )


# --- opening and escalating ---------------------------------------------------------------------


def incident_body(level: Row, data: OpenIn, enabled: list[str]) -> dict[str, Any]:
    """The incident ``posting.post`` receives: the level's template with ``data``'s overrides.

    The level's default channels are kept to those enabled on this deployment (a sample
    playbook may name Mastodon where none is configured); explicit channels are strict.
    """
    channels = data.channels if data.channels is not None else [c for c in level["channels"] if c in enabled]
    body: dict[str, Any] = {
        "title": data.title or level["title"],
        "status": data.status or level["status"],
        "message": data.message or level["message"],
        "components": {k: v.value for k, v in data.components.items()},
        "channels": channels,
        "agent": level["agent"] or {},
    }
    impact = data.impact.value if data.impact else level["impact"]
    if impact:
        body["impact"] = impact
    cadence = data.next_update_in_minutes or level["cadence_minutes"]
    if cadence:
        body["next_update_in_minutes"] = cadence
    return body


@dataclass(frozen=True)
class Opening:
    """What opening a playbook level posts, and the contacts it puts on the incident."""

    incident: NewIncident
    contact_ids: list[str]
    level: int


async def plan_opening(
    conn: AsyncConnection, playbook_id: str, data: OpenIn, enabled: list[str], author: str
) -> Opening:
    """The incident of ``data.level`` and that level's contacts (``broadcaster.posting`` records both).

    A drill may not change component states: the public page would show them.
    """
    if data.drill and data.components:
        raise InputError("a drill cannot change components", {"components": "the public page would show them"})
    playbook = await get_playbook(conn, playbook_id)
    level = get_level(playbook, data.level)
    body = validate(IncidentIn, incident_body(level, data, enabled))
    meta = {
        "playbook_id": playbook_id,
        "playbook": playbook["name"],
        "level": data.level,
        "levels": [{"level": data.level, "at": utcnow().isoformat(), "by": author}],
    }
    return Opening(NewIncident(body, drill=data.drill, meta=meta), [c["id"] for c in level["contacts"]], data.level)


async def raise_level(rt: Runtime, incident_id: str, new_level: int, actor: Actor) -> list[str]:
    """Escalate an open playbook incident to ``new_level``; returns the contacts added (and notified)."""
    author = actor.name
    async with rt.engine.begin() as conn:
        incident = await get_incident_row(conn, incident_id)
        meta = dict(incident["meta"] or {})
        if not meta.get("playbook_id"):
            raise InputError("not a playbook incident", {"incident_id": "was not opened from a playbook"})
        if incident["status"] in CLOSED_STATUSES:
            raise Conflict("incident closed", {"incident_id": "is resolved; open a new one"})
        current = int(meta.get("level") or 0)
        if new_level <= current:
            raise InputError("not a raise", {"level": f"must be above the current level {current}"})
        playbook = await get_playbook(conn, meta["playbook_id"])
        level = get_level(playbook, new_level)
        added = await contacts.add_to_incident(conn, incident_id, [c["id"] for c in level["contacts"]], new_level)
        meta["level"] = new_level
        meta["levels"] = [*meta.get("levels", []), {"level": new_level, "at": utcnow().isoformat(), "by": author}]
        await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(meta=meta))
        latest = (
            await conn.execute(
                select(updates.c.id)
                .where(updates.c.incident_id == incident_id)
                .order_by(updates.c.number.desc())
                .limit(1)
            )
        ).scalar_one()
        await audit.record(
            conn, str(actor), "playbook.escalate", target=incident_id, level=new_level, contacts=len(added)
        )
    if added:
        await contact_notices.enqueue(rt, incident_id, str(latest), suffix=f"L{new_level}")
    return added
