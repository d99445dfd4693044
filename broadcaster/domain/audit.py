"""The audit log: who did what, when. Every write, from every entry point, records one row.

An actor is ``user:NAME`` (console), ``token:NAME`` (API), ``cli:OSUSER`` or ``system:JOB``.
The log is read newest first, a page at a time, keyed on the entry id::

    page = await audit.recent(conn, limit=50)
    older = await audit.recent(conn, limit=50, before=page.next_before)

Keyset paging, not offsets: entries written between two reads never shift a page, so paging
back neither skips nor repeats one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import audit_log, utcnow

Row = dict[str, Any]

MAX_LIMIT = 1000
MAX_ID = 2**63 - 1  # entry ids are BIGINT: a larger ``before`` would overflow the comparison


@dataclass(frozen=True, slots=True)
class Page:
    """Entries newest first; ``next_before`` is the ``before`` of the next, older page (None: no more)."""

    entries: list[Row]
    next_before: int | None


async def record(conn: AsyncConnection, actor: str, action: str, target: str | None = None, **details: Any) -> None:
    """Write one entry in the caller's transaction (so it exists exactly when the write does)."""
    await conn.execute(
        audit_log.insert().values(at=utcnow(), actor=actor, action=action, target=target, details=details)
    )


async def recent(conn: AsyncConnection, limit: int = 200, before: int | None = None) -> Page:
    """Up to ``limit`` entries older than the entry ``before`` (default: the newest), newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be within 1..{MAX_LIMIT}")
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    entries = rows[:limit]
    return Page(entries, int(entries[-1]["id"]) if len(rows) > limit else None)
