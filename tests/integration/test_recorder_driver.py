"""The recorder's SQLite writer: outcomes written through the driver read back as SQLAlchemy wrote them.

The same rows are recorded once through ``claims.record`` (SQLAlchemy, async) and once through
``claims.record_on_driver`` (the recorder thread's ``sqlite3`` connection); every column reads
back the same, times included, and a row no longer ``sending`` is left alone by both.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.dialects import sqlite

from broadcaster.config import Settings
from broadcaster.db import connect_sqlite, deliveries, make_engine, sqlite_file, utcnow
from broadcaster.delivery import claims
from broadcaster.models import DeliveryState

COLUMNS = ("state", "provider_id", "last_error", "claim", "next_attempt_at", "sent_at", "attempts")


async def test_driver_writes_what_sqlalchemy_writes(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    path = sqlite_file(engine)
    if path is None:
        await engine.dispose()
        pytest.skip("the driver path is the SQLite file's")
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(text("PRAGMA foreign_keys=OFF"))
        rows = [
            {"channel": "email", "recipient": f"r{i}", "state": "sending", "attempts": 1, "created_at": now}
            for i in range(8)
        ]
        await conn.execute(insert(deliveries), [{**row, "updated_at": now} for row in rows])
        ids = list((await conn.execute(select(deliveries.c.id).order_by(deliveries.c.id))).scalars())
    due = now + timedelta(seconds=90)

    def outcomes(first: int) -> list[claims.Result]:
        return [
            claims.Result(ids[first], DeliveryState.SENT, provider_id="<u.a.b@status.test>"),
            claims.Result(ids[first + 1], DeliveryState.RETRY, error="smtp 451 at rcpt: later", next_attempt_at=due),
            claims.Result(ids[first + 2], DeliveryState.FAILED, error="smtp 550 at rcpt: no such user"),
        ]

    async with engine.begin() as conn:
        await claims.record(conn, outcomes(0), {})
    driver = connect_sqlite(path)
    try:
        driver.execute("BEGIN IMMEDIATE")
        claims.record_on_driver(driver.cursor(), sqlite.dialect(), outcomes(4), {})
        driver.execute("COMMIT")
        driver.execute("BEGIN IMMEDIATE")  # again: those rows are no longer sending, nothing changes
        claims.record_on_driver(driver.cursor(), sqlite.dialect(), [claims.Result(ids[4], DeliveryState.FAILED)], {})
        driver.execute("COMMIT")
    finally:
        driver.close()

    async with engine.connect() as conn:
        result = await conn.execute(select(*(deliveries.c[name] for name in COLUMNS)).order_by(deliveries.c.id))
        read = [tuple(row) for row in result]
    await engine.dispose()

    def without_sent_at(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        return [row[:5] + row[6:] for row in rows]  # sent_at is the time of each write

    assert without_sent_at(read[4:7]) == without_sent_at(read[0:3]), "the driver's rows read back as SQLAlchemy's"
    sent_at = read[4][5]
    assert isinstance(sent_at, datetime) and sent_at.tzinfo is not None
    assert timedelta(0) <= sent_at - now < timedelta(seconds=5)
    assert read[1][4] == due, "a retry's due time survives the driver's conversion"
    assert read[3][0] == read[7][0] == "sending", "rows not recorded stay as they were"
