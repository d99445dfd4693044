"""The delivery ledger: one row per update × channel × recipient.

Every state change of a delivery goes through here (the outbox beside it is ``outbox``;
what the relay takes back from lost workers and jobs is ``recovery``). Rows are *claimed*
before sending (state ``sending`` with a claim token naming the worker), so two workers
never send the same row, and a row already ``sent`` is never claimed again.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, literal, not_, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import (
    channel_threads,
    deliveries,
    incident_components,
    incidents,
    outbox,
    subscriber_components,
    subscribers,
    updates,
    utcnow,
)
from broadcaster.models import DeliveryState

BROADCAST_RECIPIENT = "*"
ACTIVE_STATES = (DeliveryState.PENDING.value, DeliveryState.RETRY.value)
UNFINISHED_STATES = (DeliveryState.PENDING.value, DeliveryState.RETRY.value, DeliveryState.SENDING.value)


def insert_ignoring_conflicts(conn: AsyncConnection, table: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(table)


# --- recipients ---------------------------------------------------------------------------------


async def add_broadcast_row(conn: AsyncConnection, update_id: str, channel: str) -> int:
    """The single ledger row of a broadcast channel for ``update_id`` (created once)."""
    now = utcnow()
    await conn.execute(
        insert_ignoring_conflicts(conn, deliveries)
        .values(
            update_id=update_id,
            channel=channel,
            recipient=BROADCAST_RECIPIENT,
            state="pending",
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
    )
    row_id = (
        await conn.execute(
            select(deliveries.c.id).where(
                deliveries.c.update_id == update_id,
                deliveries.c.channel == channel,
                deliveries.c.recipient == BROADCAST_RECIPIENT,
            )
        )
    ).scalar_one()
    return int(row_id)


async def add_subscriber_rows(conn: AsyncConnection, update_id: str, channel: str) -> None:
    """One pending row per matching subscriber, in a single INSERT ... SELECT (idempotent).

    Matching: confirmed, not unsubscribed or suppressed, drill audience only for drills,
    and either no component filter or a filter touching one of the incident's components.
    """
    incident = (
        await conn.execute(
            select(incidents.c.id, incidents.c.drill)
            .join(updates, updates.c.incident_id == incidents.c.id)
            .where(updates.c.id == update_id)
        )
    ).one()
    incident_id, drill = incident
    touched = select(incident_components.c.component_id).where(incident_components.c.incident_id == incident_id)
    has_filter = exists().where(subscriber_components.c.subscriber_id == subscribers.c.id)
    matches_filter = exists().where(
        subscriber_components.c.subscriber_id == subscribers.c.id, subscriber_components.c.component_id.in_(touched)
    )
    any_touched = exists(touched)
    now = utcnow()
    matching = select(
        literal(update_id),
        literal(channel),
        subscribers.c.id,
        subscribers.c.address,
        literal(DeliveryState.PENDING.value),
        literal(0),
        literal(now, deliveries.c.created_at.type),
        literal(now, deliveries.c.updated_at.type),
    ).where(
        subscribers.c.channel == channel,
        subscribers.c.confirmed.is_(True),
        subscribers.c.unsubscribed_at.is_(None),
        subscribers.c.suppressed_reason.is_(None),
        subscribers.c.drill.is_(bool(drill)),
        or_(not_(any_touched), not_(has_filter), matches_filter),
    )
    statement = (
        insert_ignoring_conflicts(conn, deliveries)
        .from_select(
            ["update_id", "channel", "recipient", "address", "state", "attempts", "created_at", "updated_at"], matching
        )
        .on_conflict_do_nothing()
    )
    await conn.execute(statement)


async def batch_ranges(
    conn: AsyncConnection, update_id: str, channel: str, batch_size: int
) -> AsyncIterator[tuple[int, int]]:
    """(first_id, last_id) of consecutive batches of this update's rows; deterministic."""
    after = 0
    while True:
        result = await conn.execute(
            select(deliveries.c.id)
            .where(deliveries.c.update_id == update_id, deliveries.c.channel == channel, deliveries.c.id > after)
            .order_by(deliveries.c.id)
            .limit(batch_size)
        )
        ids = [int(i) for i in result.scalars()]
        if not ids:
            return
        yield ids[0], ids[-1]
        after = ids[-1]


# --- claiming and recording ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    recipient: str
    address: str | None
    attempts: int
    secret: str | None
    active: bool  # False when the subscriber left after the fan-out started
    language: str | None = None  # the subscriber's; None: the page's default


def unsent_in_range(update_id: str, channel: str, first_id: int, last_id: int) -> Any:
    """Rows of one batch range still waiting to be sent (pending or retry)."""
    return and_(
        deliveries.c.update_id == update_id,
        deliveries.c.channel == channel,
        deliveries.c.id >= first_id,
        deliveries.c.id <= last_id,
        deliveries.c.state.in_(ACTIVE_STATES),
    )


def claim_token(claimant: str | None) -> str:
    """A fresh claim token: ``<worker id>.<random>``, so the relay can tell whose claims died with a worker."""
    return f"{claimant}.{secrets.token_hex(4)}" if claimant else secrets.token_hex(8)


def claimant_of(token: str) -> str | None:
    """The worker id a claim token names (None for a claim made outside a worker)."""
    claimant, dot, _ = token.rpartition(".")
    return claimant if dot else None


async def claim(
    conn: AsyncConnection, update_id: str, channel: str, first_id: int, last_id: int, claimant: str | None = None
) -> list[ClaimedRow]:
    """Mark due, unsent rows in the range as ``sending`` under a fresh claim of ``claimant`` and return them."""
    token = claim_token(claimant)
    now = utcnow()
    await conn.execute(
        deliveries.update()
        .where(
            unsent_in_range(update_id, channel, first_id, last_id),
            or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
        )
        .values(
            state=DeliveryState.SENDING.value,
            claim=token,
            claimed_at=now,
            updated_at=now,
            attempts=deliveries.c.attempts + 1,
        )
    )
    active = and_(subscribers.c.unsubscribed_at.is_(None), subscribers.c.suppressed_reason.is_(None))
    result = await conn.execute(
        select(
            deliveries.c.id,
            deliveries.c.recipient,
            deliveries.c.address,
            deliveries.c.attempts,
            subscribers.c.secret,
            subscribers.c.language,
            case((subscribers.c.id.is_(None), true()), else_=active).label("active"),
        )
        .select_from(deliveries.outerjoin(subscribers, subscribers.c.id == deliveries.c.recipient))
        .where(deliveries.c.claim == token)
        .order_by(deliveries.c.id)
    )
    return [
        ClaimedRow(int(r.id), r.recipient, r.address, int(r.attempts), r.secret, bool(r.active), r.language)
        for r in result
    ]


@dataclass(frozen=True)
class Result:
    """What happened to one claimed row."""

    delivery_id: int
    state: DeliveryState
    provider_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    suppress: bool = False


# Built once: constructing and keying an UPDATE costs more CPU than running it for a few rows,
# and the recorder runs these for every few outcomes.
_STILL_SENDING = deliveries.c.state == DeliveryState.SENDING.value
_RECORD_SENT = (
    deliveries.update()
    .where(deliveries.c.id == bindparam("row_id"), _STILL_SENDING)
    .values(
        state=DeliveryState.SENT.value,
        updated_at=bindparam("now"),
        claim=None,
        provider_id=bindparam("pid"),
        sent_at=bindparam("now"),
        last_error=None,
        next_attempt_at=None,
    )
)
_RECORD_OTHER = (
    deliveries.update()
    .where(deliveries.c.id == bindparam("row_id"), _STILL_SENDING)
    .values(
        state=bindparam("new_state"),
        updated_at=bindparam("now"),
        claim=None,
        last_error=bindparam("error"),
        next_attempt_at=bindparam("due"),
    )
)


async def record(conn: AsyncConnection, results: Sequence[Result], recipient_of: Mapping[int, str]) -> None:
    """Write outcomes; only rows still ``sending`` change, so a sent row stays sent.

    One executemany for the sent rows and one for the others: a batch costs two statements,
    not one round trip per row.
    """
    now = utcnow()
    sent = [
        {"row_id": r.delivery_id, "pid": r.provider_id, "now": now} for r in results if r.state is DeliveryState.SENT
    ]
    others = [
        {"row_id": r.delivery_id, "new_state": r.state.value, "error": r.error, "due": r.next_attempt_at, "now": now}
        for r in results
        if r.state is not DeliveryState.SENT
    ]
    if sent:
        await conn.execute(_RECORD_SENT, sent)
    if others:
        await conn.execute(_RECORD_OTHER, others)
    for item in results:
        if item.suppress and recipient_of.get(item.delivery_id):
            await conn.execute(
                subscribers.update()
                .where(subscribers.c.id == recipient_of[item.delivery_id], subscribers.c.suppressed_reason.is_(None))
                .values(suppressed_reason=item.error or "suppressed")
            )


async def hand_back(conn: AsyncConnection, delivery_ids: Sequence[int], *, attempted: bool = False) -> None:
    """Claimed rows go back in line, due now: never attempted (the worker is stopping; the
    attempt is not counted), or ``attempted`` but cut off before an outcome (a cancelled job)."""
    if not delivery_ids:
        return
    values: dict[str, Any] = {
        "state": DeliveryState.RETRY.value,
        "claim": None,
        "next_attempt_at": None,
        "updated_at": utcnow(),
    }
    if attempted:
        values["last_error"] = "cut off while sending (job cancelled); retried"
    else:
        values["attempts"] = case((deliveries.c.attempts > 0, deliveries.c.attempts - 1), else_=0)
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(list(delivery_ids)), deliveries.c.state == DeliveryState.SENDING.value)
        .values(values)
    )


async def earliest_retry(
    conn: AsyncConnection, update_id: str, channel: str, first_id: int, last_id: int
) -> datetime | None:
    """When the next row of this range is due again, if any still waits for a retry."""
    value = (
        await conn.execute(
            select(func.min(func.coalesce(deliveries.c.next_attempt_at, deliveries.c.updated_at))).where(
                unsent_in_range(update_id, channel, first_id, last_id)
            )
        )
    ).scalar()
    return value if isinstance(value, datetime) else None


async def earlier_update_unfinished(conn: AsyncConnection, update_id: str, channel: str) -> bool:
    """True while an earlier update of the same incident is still being published on ``channel``.

    Broadcast channels publish an incident's updates in order, so replies thread correctly.
    """
    this = (await conn.execute(select(updates.c.incident_id, updates.c.number).where(updates.c.id == update_id))).one()
    earlier = (
        select(deliveries.c.id)
        .join(updates, updates.c.id == deliveries.c.update_id)
        .where(
            updates.c.incident_id == this.incident_id,
            updates.c.number < this.number,
            deliveries.c.channel == channel,
            deliveries.c.state.in_(UNFINISHED_STATES),
        )
        .limit(1)
    )
    return (await conn.execute(earlier)).first() is not None


# --- threads ------------------------------------------------------------------------------------


async def get_thread(conn: AsyncConnection, incident_id: str, channel: str) -> dict[str, Any]:
    value = (
        await conn.execute(
            select(channel_threads.c.data).where(
                channel_threads.c.incident_id == incident_id, channel_threads.c.channel == channel
            )
        )
    ).scalar()
    return dict(value or {})


async def set_thread(conn: AsyncConnection, incident_id: str, channel: str, data: Mapping[str, Any]) -> None:
    now = utcnow()
    updated = await conn.execute(
        channel_threads.update()
        .where(channel_threads.c.incident_id == incident_id, channel_threads.c.channel == channel)
        .values(data=dict(data), updated_at=now)
    )
    if updated.rowcount == 0:
        await conn.execute(
            channel_threads.insert().values(incident_id=incident_id, channel=channel, data=dict(data), updated_at=now)
        )


# --- ranges -------------------------------------------------------------------------------------

RowRange = tuple[str, str, int, int]
"""(update_id, channel, first_id, last_id): the rows one ``deliver_batch`` job covers."""


def group_ranges(rows: Sequence[Any], batch_size: int) -> list[RowRange]:
    """Sorted (update_id, channel, id) rows folded into ranges of at most ``batch_size`` ids."""
    ranges: list[RowRange] = []
    for update_id, channel, row_id in rows:
        last = ranges[-1] if ranges else None
        if last and last[0] == update_id and last[1] == channel and int(row_id) - last[2] < batch_size:
            ranges[-1] = (last[0], last[1], last[2], int(row_id))
        else:
            ranges.append((str(update_id), str(channel), int(row_id), int(row_id)))
    return ranges


# --- reporting ----------------------------------------------------------------------------------


def _counts_query() -> Any:
    state = deliveries.c.state
    return select(
        deliveries.c.channel,
        func.sum(case((state == "sent", 1), else_=0)).label("sent"),
        func.sum(case((state == "failed", 1), else_=0)).label("failed"),
        func.sum(case((state.in_(UNFINISHED_STATES), 1), else_=0)).label("pending"),
        func.count().label("total"),
    ).group_by(deliveries.c.channel)


async def delivery_counts(conn: AsyncConnection, update_id: str) -> dict[str, dict[str, int]]:
    """{channel: {pending, sent, failed, total}} for one update; outbox channels not yet fanned out count too."""
    counts: dict[str, dict[str, int]] = {}
    result = await conn.execute(select(outbox.c.channel).where(outbox.c.update_id == update_id).order_by(outbox.c.id))
    for channel in result.scalars():
        counts[channel] = {"pending": 0, "sent": 0, "failed": 0, "total": 0}
    for row in (await conn.execute(_counts_query().where(deliveries.c.update_id == update_id))).mappings():
        counts[row["channel"]] = {k: int(row[k] or 0) for k in ("pending", "sent", "failed", "total")}
    return counts


async def failures(conn: AsyncConnection, update_id: str, limit: int = 200) -> list[dict[str, Any]]:
    result = await conn.execute(
        select(
            deliveries.c.id,
            deliveries.c.channel,
            deliveries.c.recipient,
            deliveries.c.address,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.updated_at,
        )
        .where(deliveries.c.update_id == update_id, deliveries.c.state == DeliveryState.FAILED.value)
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [dict(r) for r in result.mappings()]


async def current_updates(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    """For each channel, the newest update it has delivered (broadcast) or started delivering."""
    sent_at = func.max(deliveries.c.sent_at)
    latest = (
        select(deliveries.c.channel, sent_at.label("sent_at"))
        .where(deliveries.c.state == DeliveryState.SENT.value, deliveries.c.update_id.is_not(None))  # not one-offs
        .group_by(deliveries.c.channel)
        .subquery()
    )
    result = await conn.execute(
        select(
            deliveries.c.channel, deliveries.c.update_id, updates.c.incident_id, updates.c.number, deliveries.c.sent_at
        )
        .join(latest, and_(latest.c.channel == deliveries.c.channel, latest.c.sent_at == deliveries.c.sent_at))
        .join(updates, updates.c.id == deliveries.c.update_id)
        .where(deliveries.c.state == DeliveryState.SENT.value)
    )
    shown: dict[str, dict[str, Any]] = {}
    for row in result.mappings():
        shown.setdefault(row["channel"], dict(row))
    return shown


async def reset_failed(
    conn: AsyncConnection, update_id: str, channel: str, delivery_ids: Sequence[int] | None = None
) -> int:
    """Put failed rows back in line (the console's retry button, ``broadcaster replay``)."""
    query = deliveries.update().where(
        deliveries.c.update_id == update_id,
        deliveries.c.channel == channel,
        deliveries.c.state == DeliveryState.FAILED.value,
    )
    if delivery_ids:
        query = query.where(deliveries.c.id.in_(list(delivery_ids)))
    result = await conn.execute(
        query.values(state=DeliveryState.RETRY.value, next_attempt_at=None, updated_at=utcnow(), attempts=0)
    )
    return int(result.rowcount or 0)


async def set_provider_status(
    conn: AsyncConnection, channel: str, provider_id: str, status: str, error: str | None = None
) -> str | None:
    """Record what the provider later reported about a sent message (SMS status callbacks).

    Sets ``provider_status`` (and ``last_error`` when ``error`` is given) on the row with
    that provider id; the row stays ``sent``. Returns the row's recipient, or None when no
    row has that id.
    """
    recipient = (
        await conn.execute(
            select(deliveries.c.recipient).where(
                deliveries.c.channel == channel, deliveries.c.provider_id == provider_id
            )
        )
    ).scalar()
    if recipient is None:
        return None
    values: dict[str, Any] = {"provider_status": status, "updated_at": utcnow()}
    if error is not None:
        values["last_error"] = error
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.channel == channel, deliveries.c.provider_id == provider_id)
        .values(**values)
    )
    return str(recipient)
