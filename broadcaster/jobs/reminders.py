"""Cadence reminders: when an incident's promised next update is overdue, tell the commanders.

An arq cron job (period ``reminder_interval_s``) finds open incidents whose ``next_update_at``
has passed and that were not reminded yet, marks them (a guarded UPDATE, so two workers never
remind twice), publishes a ``reminder`` event (the console's banner) and sends the team
(commanders and admins with an email address or phone) a one-off email and SMS through
the enabled channels, looked up by name in the registry (``DirectSender``; each message is a
ledger row of kind ``reminder``). Posting an update clears
``reminded_at``, so the next missed promise is reminded again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.actors import Actor
from broadcaster.db import incidents, users, utcnow
from broadcaster.delivery import direct
from broadcaster.delivery.channel import DirectMessage
from broadcaster.domain import audit
from broadcaster.models import CLOSED_STATUSES, DeliveryKind, Role
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)

TEAM_ROLES = (Role.COMMANDER.value, Role.ADMIN.value)


@dataclass(frozen=True)
class Reminder:
    incident_id: str
    title: str
    next_update_at: datetime
    late_by_s: float
    drill: bool = False

    def subject(self) -> str:
        return f"{'[DRILL] ' if self.drill else ''}[Update overdue] {self.title}"

    def text(self, console_url: str) -> str:
        minutes = max(1, round(self.late_by_s / 60))
        return (
            f'The update promised for {self.next_update_at:%H:%M} UTC on "{self.title}" is {minutes} min '
            f"overdue. Post an update: {console_url}/console/compose?incident_id={self.incident_id}"
        )


async def overdue(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Open incidents whose promised update time has passed and were not reminded yet."""
    result = await conn.execute(
        select(incidents.c.id, incidents.c.name, incidents.c.next_update_at, incidents.c.drill)
        .where(
            incidents.c.next_update_at.is_not(None),
            incidents.c.next_update_at <= now,
            incidents.c.reminded_at.is_(None),
            incidents.c.status.not_in(CLOSED_STATUSES),
        )
        .order_by(incidents.c.next_update_at)
    )
    return [dict(r) for r in result.mappings()]


async def claim(conn: AsyncConnection, incident_id: str, promised: datetime, now: datetime) -> bool:
    """Mark the incident reminded; False when another worker (or a new update) got there first."""
    result = await conn.execute(
        incidents.update()
        .where(incidents.c.id == incident_id, incidents.c.reminded_at.is_(None), incidents.c.next_update_at == promised)
        .values(reminded_at=now)
    )
    return bool(result.rowcount)


async def team(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Active commanders and admins that can be reached by email or phone."""
    result = await conn.execute(
        select(users.c.username, users.c.email, users.c.phone)
        .where(users.c.role.in_(TEAM_ROLES), users.c.disabled_at.is_(None))
        .order_by(users.c.username)
    )
    return [dict(r) for r in result.mappings() if r["email"] or r["phone"]]


async def notify_team(rt: Runtime, members: list[dict[str, Any]], reminder: Reminder) -> dict[str, int]:
    """One email and one SMS per reachable member, through whichever of the two is enabled."""
    message = DirectMessage(subject=reminder.subject(), text=reminder.text(rt.settings.public_url))
    return await direct.notify_users(rt.engine, rt.registry.enabled, DeliveryKind.REMINDER, members, message)


async def send_reminders(rt: Runtime, now: datetime | None = None) -> list[Reminder]:
    """Remind the team of every overdue incident once; returns the reminders sent."""
    now = now or utcnow()
    async with rt.engine.connect() as conn:
        due = await overdue(conn, now)
        members = await team(conn) if due else []
    sent: list[Reminder] = []
    for row in due:
        async with rt.engine.begin() as conn:
            if not await claim(conn, row["id"], row["next_update_at"], now):
                continue
            reminder = Reminder(
                row["id"],
                row["name"],
                row["next_update_at"],
                (now - row["next_update_at"]).total_seconds(),
                bool(row["drill"]),
            )
            await audit.record(
                conn,
                str(Actor.system("reminders")),
                "reminder",
                target=row["id"],
                next_update_at=row["next_update_at"].isoformat(),
                recipients=len(members),
            )
        await rt.bus.publish(
            "reminder",
            {
                "incident_id": reminder.incident_id,
                "title": reminder.title,
                "next_update_at": reminder.next_update_at.isoformat(),
                "late_by_s": round(reminder.late_by_s),
            },
        )
        outcome = await notify_team(rt, members, reminder)
        log.info("reminded %d team members about incident %s: %s", len(members), row["id"], outcome)
        sent.append(reminder)
    return sent


async def reminders_job(ctx: dict[str, Any]) -> int:
    """arq cron entry: remind about every overdue incident."""
    runtime: Runtime = ctx["runtime"]
    return len(await send_reminders(runtime))
