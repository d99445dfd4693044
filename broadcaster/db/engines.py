"""The engines: the async one everything uses, and a plain SQLite connection for a hot path in a thread.

SQLite connections get WAL, foreign keys and a generous busy timeout, whichever driver opens them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

BUSY_TIMEOUT_S = 30


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def make_engine(database_url: str, *, pool: bool = True) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a generous busy timeout."""
    kwargs: dict[str, Any] = {}
    if not pool:
        kwargs["poolclass"] = NullPool
    if database_url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
    elif pool:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(database_url, **kwargs)
    if database_url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The path of the SQLite file ``engine`` is on; None for another database or one in memory."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or "mode=memory" in str(url):
        return None
    return str(url.database)


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A blocking ``sqlite3`` connection to ``path`` with the engine's pragmas, in autocommit mode
    (the caller says ``BEGIN``), usable from any one thread at a time.

    For work run whole in one thread: through aiosqlite every statement, cursor and commit is
    a hop to its thread and back to the event loop; a transaction run in one thread is one hop.
    """
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    _sqlite_pragmas(conn, None)
    return conn
