"""The ``import_sources`` table: which local row each source object became, and what the source said then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import import_sources, utcnow

# The kinds of rows the table maps (the report's kinds group groups with components, and so on).
COMPONENT = "component"
INCIDENT = "incident"
UPDATE = "update"
SUBSCRIBER = "subscriber"
PAGE = "page"


@dataclass
class Known:
    local_id: str
    fingerprint: str


class SourceMap:
    """The mapping of one source, read once; ``remember`` queues writes that ``flush`` makes in bulk."""

    def __init__(self, source: str, rows: dict[tuple[str, str], Known]) -> None:
        self.source = source
        self._rows = rows
        self._new: dict[tuple[str, str], dict[str, Any]] = {}
        self._changed: dict[tuple[str, str], dict[str, Any]] = {}

    @classmethod
    async def load(cls, conn: AsyncConnection, source: str) -> SourceMap:
        result = await conn.execute(select(import_sources).where(import_sources.c.source == source))
        rows = {(r.kind, r.source_id): Known(r.local_id, r.fingerprint) for r in result}
        return cls(source, rows)

    def get(self, kind: str, source_id: str) -> Known | None:
        return self._rows.get((kind, source_id))

    def local_ids(self, kind: str) -> set[str]:
        """Every local id this source mapped ``kind`` objects to."""
        return {known.local_id for (k, _), known in self._rows.items() if k == kind}

    def remember(self, kind: str, source_id: str, local_id: str, fingerprint: str) -> None:
        key = (kind, source_id)
        row = {"kind": kind, "source_id": source_id, "local_id": local_id, "fingerprint": fingerprint}
        if key in self._rows and key not in self._new:
            self._changed[key] = row
        else:
            self._new[key] = row
        self._rows[key] = Known(local_id, fingerprint)

    async def flush(self, conn: AsyncConnection) -> None:
        now = utcnow()
        if self._new:
            await conn.execute(
                import_sources.insert(),
                [{**row, "source": self.source, "imported_at": now} for row in self._new.values()],
            )
        if self._changed:
            statement = (
                import_sources.update()
                .where(
                    and_(
                        import_sources.c.source == self.source,
                        import_sources.c.kind == bindparam("b_kind"),
                        import_sources.c.source_id == bindparam("b_source_id"),
                    )
                )
                .values(local_id=bindparam("b_local_id"), fingerprint=bindparam("b_fingerprint"), imported_at=now)
            )
            await conn.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in self._changed.values()])
        self._new.clear()
        self._changed.clear()
