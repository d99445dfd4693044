"""Internal crisis contacts: the people a playbook level keeps informed, and their acknowledgements.

Contacts are not subscribers. They live in their own table, never appear in subscriber lists
or exports, and their messages carry no unsubscribe footer (an admin removes a contact).
An incident opened from a playbook gets one ``incident_contacts`` row per contact of its level;
each row records when the contact was first notified, the last update number they were sent,
and when (and with which link) they acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import contact_assignments, contacts, incident_contacts, new_id, utcnow
from broadcaster.delivery.ledger import insert_ignoring_conflicts
from broadcaster.domain.subscribers import normalize_address
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.schemas import Strict
from broadcaster.security import hash_token

Row = dict[str, Any]
ACK_PURPOSE = "ack"
ACK_MAX_AGE_S = 30 * 24 * 3600


class ContactIn(Strict):
    """A contact as created or edited (console, YAML import)."""

    name: str = Field(min_length=1, max_length=255)
    role: str = Field(default="", max_length=255)
    email: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=32)
    groups: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("name", "role")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return sorted({g.strip() for g in value if g.strip()})


def _normalized(data: ContactIn) -> dict[str, Any]:
    if not data.name:
        raise InputError("a contact needs a name", {"name": "required"})
    email = normalize_address("email", data.email, False, field="email") if data.email else None
    phone = normalize_address("sms", data.phone, False, field="phone") if data.phone else None
    if not email and not phone:
        raise InputError("a contact needs a way to be reached", {"email": "give an email address or a phone"})
    return {"name": data.name, "role": data.role, "email": email, "phone": phone, "groups": data.groups}


async def list_contacts(conn: AsyncConnection) -> list[Row]:
    result = await conn.execute(select(contacts).order_by(contacts.c.name))
    return [dict(r) for r in result.mappings()]


async def get_contact(conn: AsyncConnection, contact_id: str) -> Row:
    row = (await conn.execute(select(contacts).where(contacts.c.id == contact_id))).mappings().first()
    if row is None:
        raise NotFound("no such contact", {"contact_id": f"unknown contact {contact_id!r}"})
    return dict(row)


async def find_by_name(conn: AsyncConnection, name: str) -> Row | None:
    row = (await conn.execute(select(contacts).where(contacts.c.name == name))).mappings().first()
    return dict(row) if row else None


async def create_contact(conn: AsyncConnection, data: ContactIn) -> Row:
    values = _normalized(data)
    if await find_by_name(conn, values["name"]):
        raise Conflict("contact exists", {"name": "already taken"})
    now = utcnow()
    contact_id = new_id()
    await conn.execute(contacts.insert().values(id=contact_id, created_at=now, updated_at=now, **values))
    return await get_contact(conn, contact_id)


async def update_contact(conn: AsyncConnection, contact_id: str, data: ContactIn) -> Row:
    await get_contact(conn, contact_id)
    values = _normalized(data)
    other = await find_by_name(conn, values["name"])
    if other and other["id"] != contact_id:
        raise Conflict("contact exists", {"name": "already taken"})
    await conn.execute(contacts.update().where(contacts.c.id == contact_id).values(updated_at=utcnow(), **values))
    return await get_contact(conn, contact_id)


async def upsert_contact(conn: AsyncConnection, data: ContactIn) -> Row:
    """Create the contact, or overwrite the one with the same name (YAML import)."""
    existing = await find_by_name(conn, data.name.strip())
    if existing:
        return await update_contact(conn, existing["id"], data)
    return await create_contact(conn, data)


async def delete_contact(conn: AsyncConnection, contact_id: str) -> Row:
    row = await get_contact(conn, contact_id)
    await conn.execute(contacts.delete().where(contacts.c.id == contact_id))
    return row


# --- assignments to playbook levels -------------------------------------------------------------


async def assign(conn: AsyncConnection, contact_ids: Sequence[str], playbook_id: str, level: int) -> int:
    """Put contacts on a level's list (idempotent); returns how many rows were asked for."""
    rows = [{"contact_id": c, "playbook_id": playbook_id, "level": level} for c in dict.fromkeys(contact_ids)]
    if rows:
        await conn.execute(insert_ignoring_conflicts(conn, contact_assignments).values(rows).on_conflict_do_nothing())
    return len(rows)


async def unassign(conn: AsyncConnection, contact_id: str, playbook_id: str, level: int) -> None:
    await conn.execute(
        contact_assignments.delete().where(
            contact_assignments.c.contact_id == contact_id,
            contact_assignments.c.playbook_id == playbook_id,
            contact_assignments.c.level == level,
        )
    )


async def group_members(conn: AsyncConnection, group: str) -> list[str]:
    """Ids of the contacts in ``group``."""
    return [c["id"] for c in await list_contacts(conn) if group in (c["groups"] or [])]


async def level_contacts(conn: AsyncConnection, playbook_id: str, level: int | None = None) -> list[Row]:
    """The contacts on a playbook's levels (all levels when ``level`` is None), each with its ``level``."""
    query = (
        select(contacts, contact_assignments.c.level)
        .join(contact_assignments, contact_assignments.c.contact_id == contacts.c.id)
        .where(contact_assignments.c.playbook_id == playbook_id)
        .order_by(contact_assignments.c.level, contacts.c.name)
    )
    if level is not None:
        query = query.where(contact_assignments.c.level == level)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


# --- contacts of an incident --------------------------------------------------------------------


async def add_to_incident(conn: AsyncConnection, incident_id: str, contact_ids: Sequence[str], level: int) -> list[str]:
    """Put contacts on an incident; returns the ids of those that were not on it yet."""
    present = set(
        (
            await conn.execute(
                select(incident_contacts.c.contact_id).where(incident_contacts.c.incident_id == incident_id)
            )
        ).scalars()
    )
    added = [c for c in dict.fromkeys(contact_ids) if c not in present]
    if added:
        now = utcnow()
        await conn.execute(
            insert_ignoring_conflicts(conn, incident_contacts)
            .values(
                [
                    {
                        "id": new_id(),
                        "incident_id": incident_id,
                        "contact_id": c,
                        "level": level,
                        "added_at": now,
                        "notified_number": 0,
                    }
                    for c in added
                ]
            )
            .on_conflict_do_nothing()
        )
    return added


async def has_contacts(conn: AsyncConnection, incident_id: str) -> bool:
    query = select(incident_contacts.c.id).where(incident_contacts.c.incident_id == incident_id).limit(1)
    return (await conn.execute(query)).first() is not None


async def incident_contact_rows(conn: AsyncConnection, incident_id: str) -> list[Row]:
    """The incident's contacts with their names, roles and acknowledgement state, by level then name."""
    result = await conn.execute(
        select(incident_contacts, contacts.c.name, contacts.c.role, contacts.c.email, contacts.c.phone)
        .join(contacts, contacts.c.id == incident_contacts.c.contact_id)
        .where(incident_contacts.c.incident_id == incident_id)
        .order_by(incident_contacts.c.level, contacts.c.name)
    )
    return [dict(r) for r in result.mappings()]


async def due_for(conn: AsyncConnection, incident_id: str, number: int) -> list[Row]:
    """Contacts of the incident that have not been sent update ``number`` (or a later one)."""
    rows = await incident_contact_rows(conn, incident_id)
    return [r for r in rows if int(r["notified_number"] or 0) < number]


async def mark_notified(conn: AsyncConnection, row_id: str, number: int) -> None:
    now = utcnow()
    row = incident_contacts.c
    await conn.execute(
        incident_contacts.update().where(row.id == row_id, row.notified_at.is_(None)).values(notified_at=now)
    )
    await conn.execute(
        incident_contacts.update().where(row.id == row_id, row.notified_number < number).values(notified_number=number)
    )


async def acknowledge(conn: AsyncConnection, row_id: str, token: str) -> tuple[Row, bool]:
    """Record the acknowledgement (first one wins); returns (the row with names, newly acknowledged)."""
    result = await conn.execute(
        incident_contacts.update()
        .where(and_(incident_contacts.c.id == row_id, incident_contacts.c.acknowledged_at.is_(None)))
        .values(acknowledged_at=utcnow(), ack_token_hash=hash_token(token))
    )
    row = await incident_contact(conn, row_id)
    return row, bool(result.rowcount)


async def incident_contact(conn: AsyncConnection, row_id: str) -> Row:
    result = await conn.execute(
        select(incident_contacts, contacts.c.name, contacts.c.role)
        .join(contacts, contacts.c.id == incident_contacts.c.contact_id)
        .where(incident_contacts.c.id == row_id)
    )
    row = result.mappings().first()
    if row is None:
        raise NotFound("no such acknowledgement", {"token": "this link is no longer valid"})
    return dict(row)
