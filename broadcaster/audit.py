"""The audit log: who did what, when. Every console and API action writes one row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import audit_log, utcnow


async def record(conn: AsyncConnection, actor: str, action: str, target: str | None = None,
                 **details: Any) -> None:
    await conn.execute(audit_log.insert().values(at=utcnow(), actor=actor, action=action, target=target,
                                                 details=details))


async def recent(conn: AsyncConnection, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    result = await conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset))
    return [dict(r) for r in result.mappings()]
