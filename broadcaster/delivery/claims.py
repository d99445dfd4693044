"""Claiming and recording: the ledger rows a batch takes, and what became of each.

Rows are *claimed* before sending (state ``sending`` with a claim token naming the worker),
so two workers never send the same row, and a row already ``sent`` is never claimed again.
Both sides are set-based: one claim is two statements for the whole range, one record is a
statement or two for every outcome the recorder gathered, whatever their number (``record``
on an async connection, ``record_on_driver`` on a DB-API cursor: the same statements).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, true
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import deliveries, subscribers, utcnow
from broadcaster.delivery.ledger import ACTIVE_STATES
from broadcaster.models import DeliveryState


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
        # the range first: the primary key finds the rows (no index on the claim token)
        .where(deliveries.c.id >= first_id, deliveries.c.id <= last_id, deliveries.c.claim == token)
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


def record_statements(results: Sequence[Result], recipient_of: Mapping[int, str]) -> list[tuple[Any, Any]]:
    """The statements (with their parameters) that write ``results``; only rows still ``sending``
    change, so a sent row stays sent.

    One executemany for the sent rows and one for the others: a batch costs two statements,
    not one round trip per row (plus one per recipient to suppress).
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
    statements: list[tuple[Any, Any]] = []
    if sent:
        statements.append((_RECORD_SENT, sent))
    if others:
        statements.append((_RECORD_OTHER, others))
    for item in results:
        if item.suppress and recipient_of.get(item.delivery_id):
            suppress = (
                subscribers.update()
                .where(subscribers.c.id == recipient_of[item.delivery_id], subscribers.c.suppressed_reason.is_(None))
                .values(suppressed_reason=item.error or "suppressed")
            )
            statements.append((suppress, None))
    return statements


async def record(conn: AsyncConnection, results: Sequence[Result], recipient_of: Mapping[int, str]) -> None:
    """Write outcomes (``record_statements``) on ``conn``."""
    for statement, parameters in record_statements(results, recipient_of):
        await conn.execute(statement, parameters)


class DriverStatement:
    """A statement compiled once for a DB-API (qmark) connection: its SQL, and its parameters as rows.

    SQLAlchemy still builds the SQL and converts the values (its own bind processors); what
    this skips is its per-execution work, which cost more CPU than SQLite's for a few rows.
    """

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self._names = tuple(compiled.positiontup or ())
        self._defaults = dict(compiled.params)
        self._processors = tuple(compiled.binds[name].type.bind_processor(dialect) for name in self._names)

    def rows(self, parameters: Sequence[Mapping[str, Any]] | None) -> list[tuple[Any, ...]]:
        """Positional rows for ``parameters`` (one row of the defaults when None)."""
        converted: dict[tuple[int, int], Any] = {}  # a value shared by every row (``now``) converted once
        rows = []
        for given in parameters or ({},):
            values = self._defaults | dict(given)
            row = []
            for index, (name, process) in enumerate(zip(self._names, self._processors, strict=True)):
                value = values[name]
                if process is not None and value is not None:
                    key = (index, id(value))
                    if key not in converted:
                        converted[key] = process(value)
                    value = converted[key]
                row.append(value)
            rows.append(tuple(row))
        return rows


_DRIVER_STATEMENTS: dict[tuple[int, str], DriverStatement] = {}  # the two hot statements, per dialect


def record_on_driver(cursor: Any, dialect: Dialect, results: Sequence[Result], recipient_of: Mapping[int, str]) -> None:
    """``record`` through a DB-API cursor of ``dialect`` (the recorder's SQLite writer thread)."""
    for statement, parameters in record_statements(results, recipient_of):
        if statement is _RECORD_SENT or statement is _RECORD_OTHER:
            key = (id(statement), dialect.name)
            driver = _DRIVER_STATEMENTS.get(key)
            if driver is None:
                driver = _DRIVER_STATEMENTS[key] = DriverStatement(statement, dialect)
        else:
            driver = DriverStatement(statement, dialect)
        cursor.executemany(driver.sql, driver.rows(parameters))


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
