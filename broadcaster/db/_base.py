"""What every table module shares: the one ``MetaData``, id and time column types, ``new_id``, ``utcnow``.

``broadcaster.db`` re-exports all of it; table modules (``broadcaster.db`` itself, ``broadcaster.db.alerting``)
import it from here, so that the package can join them without an import cycle.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, String
from sqlalchemy.types import TypeDecorator

_ALPHABET = string.ascii_lowercase + string.digits


def new_id() -> str:
    """A 12-character public id, the shape Statuspage uses."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = String(32)
BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
