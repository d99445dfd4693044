"""Drills: a playbook rehearsed end to end without reaching anyone real.

A drill is an incident with ``drill = true``. The whole pipeline runs, but the fan-out only
matches drill-audience rows (``subscribers.drill``, managed here; an address in the audience
that also signs up for real has a second, real row, which drills never match), broadcast channels
other than the status page and the desk publish nothing (``broadcaster.delivery.fanout``), the public
page and API leave drills out, and every rendition is marked DRILL (``Message.drill``).

The drill report reuses ``broadcaster.crisis.report`` (time to first update, cadence kept) and adds
each contact's acknowledgement time, all from stored timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.crisis import contacts, report
from broadcaster.db import incidents
from broadcaster.db import subscribers as subscriber_table
from broadcaster.domain import subscribers
from broadcaster.domain.incidents import get_incident_row
from broadcaster.errors import InputError, NotFound
from broadcaster.schemas import SubscriberIn

Row = dict[str, Any]


# --- the drill audience -------------------------------------------------------------------------


async def audience(conn: AsyncConnection) -> list[Row]:
    result = await conn.execute(
        select(subscriber_table)
        .where(subscriber_table.c.drill.is_(True))
        .order_by(subscriber_table.c.channel, subscriber_table.c.address)
    )
    return [dict(r) for r in result.mappings()]


async def add_to_audience(conn: AsyncConnection, channel: str, address: str, allow_private_webhooks: bool) -> Row:
    """Add a confirmed drill recipient (or bring back the one already there).

    The recipient is its own row (``drill = true``): an address that is also a real subscriber
    keeps its real row untouched, and only real incidents reach that one.
    """
    if channel not in ("email", "sms", "webhook"):
        raise InputError("unknown channel", {"channel": "must be email, sms or webhook"})
    data = SubscriberIn(channel=channel, address=address, confirmed=True)
    row, _ = await subscribers.upsert_subscriber(conn, data, allow_private_webhooks=allow_private_webhooks, drill=True)
    return row


async def remove_from_audience(conn: AsyncConnection, subscriber_id: str) -> Row:
    row = await subscribers.get_subscriber(conn, subscriber_id)
    if not row["drill"]:
        raise NotFound("not in the drill audience", {"subscriber_id": "not a drill recipient"})
    await subscribers.delete_subscriber(conn, subscriber_id)
    return row


async def list_drills(conn: AsyncConnection, limit: int = 50) -> list[Row]:
    result = await conn.execute(
        select(incidents).where(incidents.c.drill.is_(True)).order_by(incidents.c.created_at.desc()).limit(limit)
    )
    return [dict(r) for r in result.mappings()]


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acknowledgement:
    name: str
    role: str
    level: int
    notified_at: datetime | None
    acknowledged_at: datetime | None

    @property
    def after_s(self) -> float | None:
        """Seconds from the first notification to the acknowledgement."""
        if self.notified_at is None or self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.notified_at).total_seconds()


@dataclass(frozen=True)
class DrillReport:
    report: report.Report
    acknowledgements: tuple[Acknowledgement, ...]
    playbook: str
    levels: tuple[Mapping[str, Any], ...]

    @property
    def acknowledged(self) -> int:
        return sum(1 for a in self.acknowledgements if a.acknowledged_at is not None)

    @property
    def slowest_ack_s(self) -> float | None:
        return max((a.after_s for a in self.acknowledgements if a.after_s is not None), default=None)


def acknowledgements(rows: Sequence[Mapping[str, Any]]) -> tuple[Acknowledgement, ...]:
    """Contact rows (``contacts.incident_contact_rows``) as acknowledgement times. Pure."""
    return tuple(
        Acknowledgement(
            str(r["name"]), str(r["role"] or ""), int(r["level"]), r.get("notified_at"), r.get("acknowledged_at")
        )
        for r in rows
    )


async def load_drill_report(conn: AsyncConnection, incident_id: str) -> DrillReport:
    """The report of a playbook incident (drill or not) from stored timestamps."""
    incident = await get_incident_row(conn, incident_id)
    meta = incident["meta"] or {}
    base = await report.load_report(conn, incident_id)
    rows = await contacts.incident_contact_rows(conn, incident_id)
    return DrillReport(base, acknowledgements(rows), str(meta.get("playbook") or ""), tuple(meta.get("levels") or ()))
