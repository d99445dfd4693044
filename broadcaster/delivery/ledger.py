"""The delivery ledger: one row per update × channel × recipient.

Every state change of a delivery goes through here (the outbox beside it is ``outbox``;
what the relay takes back from lost workers and jobs is ``recovery``): its rows are written
here, and read here for counts and reports. How a batch claims its rows and records their
outcomes is ``claims``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, not_, or_, select
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


async def _matching(conn: AsyncConnection, update_id: str, channel: str) -> list[Any]:
    """Who gets ``update_id`` on ``channel``: confirmed, not unsubscribed or suppressed, the drill
    audience only for drills, and either no component filter or one touching the incident's."""
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
    return [
        subscribers.c.channel == channel,
        subscribers.c.confirmed.is_(True),
        subscribers.c.unsubscribed_at.is_(None),
        subscribers.c.suppressed_reason.is_(None),
        subscribers.c.drill.is_(bool(drill)),
        or_(not_(any_touched), not_(has_filter), matches_filter),
    ]


async def count_matching(conn: AsyncConnection, update_id: str, channel: str) -> int:
    """How many subscribers ``add_subscriber_rows`` gives a row (the batches are sized on it)."""
    return int(await conn.scalar(select(func.count()).where(*await _matching(conn, update_id, channel))) or 0)


async def add_subscriber_rows(
    conn: AsyncConnection, update_id: str, channel: str, after: str = "", limit: int | None = None
) -> str | None:
    """One pending row per matching subscriber (``_matching``), in a single INSERT ... SELECT (idempotent).

    Subscribers are taken in id order after ``after``: at most ``limit`` of them (all when
    None). Returns the last subscriber id taken when more may follow, None once none do.
    """
    conditions = await _matching(conn, update_id, channel)
    if after:
        conditions.append(subscribers.c.id > after)
    last: str | None = None
    if limit is not None:  # the chunk ends at its limit-th subscriber; none there: this chunk is the rest
        last = await conn.scalar(
            select(subscribers.c.id).where(*conditions).order_by(subscribers.c.id).offset(limit - 1).limit(1)
        )
        if last is not None:
            conditions.append(subscribers.c.id <= last)
    now = utcnow()
    matching = (
        select(
            literal(update_id),
            literal(channel),
            subscribers.c.id,
            subscribers.c.address,
            literal(DeliveryState.PENDING.value),
            literal(0),
            literal(now, deliveries.c.created_at.type),
            literal(now, deliveries.c.updated_at.type),
        )
        .where(*conditions)
        .order_by(subscribers.c.id)
    )
    statement = (
        insert_ignoring_conflicts(conn, deliveries)
        .from_select(
            ["update_id", "channel", "recipient", "address", "state", "attempts", "created_at", "updated_at"], matching
        )
        .on_conflict_do_nothing()
    )
    await conn.execute(statement)
    return last


async def batch_ranges(
    conn: AsyncConnection, update_id: str, channel: str, batch_size: int, after: int = 0, partial: bool = True
) -> AsyncIterator[tuple[int, int]]:
    """(first_id, last_id) of consecutive batches of this update's rows after id ``after``;
    deterministic. ``partial=False``: full batches only (more rows are on their way)."""
    while True:
        result = await conn.execute(
            select(deliveries.c.id)
            .where(deliveries.c.update_id == update_id, deliveries.c.channel == channel, deliveries.c.id > after)
            .order_by(deliveries.c.id)
            .limit(batch_size)
        )
        ids = [int(i) for i in result.scalars()]
        if not ids or (len(ids) < batch_size and not partial):
            return
        yield ids[0], ids[-1]
        after = ids[-1]


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
