"""Cadence reminders: an overdue promised update reminds the team once, by banner event, email and SMS."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import audit_log, incidents, utcnow
from broadcaster.domain.users import create_user
from broadcaster.jobs.reminders import send_reminders
from broadcaster.runtime import Runtime
from sandbox.providers.twilio import TwilioProvider
from sandbox.serve import serve_app
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings, running_worker
from tests.support.posting import post_body as post

PASSWORD = "correct horse battery"


@pytest.fixture
def smtp() -> Any:
    with recording_smtp() as server:
        yield server


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[TwilioProvider, str]]:
    provider = TwilioProvider()
    async with serve_app(provider.app) as url:
        yield provider, url


@pytest.fixture
def team_settings(
    database_url: str, clean_database: None, smtp: RecordingSMTP, twilio: tuple[TwilioProvider, str]
) -> Settings:
    provider, url = twilio
    return make_settings(
        database_url,
        reminder_interval_s=1,
        **smtp.settings(),
        twilio_base_url=url,
        twilio_account_sid=provider.account_sid,
        twilio_auth_token=provider.auth_token,
        twilio_from=next(iter(provider.senders)),
        sms_rate_per_s=100.0,
    )


@pytest.fixture
async def rt(team_settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(team_settings)
    async with runtime.engine.begin() as conn:
        await create_user(conn, "ic", PASSWORD, "commander", email="ic@example.com", phone="+15005550001")
        await create_user(conn, "boss", PASSWORD, "admin", email="boss@example.com")
        await create_user(conn, "agent", PASSWORD, "agent", email="agent@example.com", phone="+15005550002")
        await create_user(conn, "viewer", PASSWORD, "viewer", email="viewer@example.com")
    yield runtime
    pool = await runtime.queue.pool()
    await pool.delete(team_settings.queue_name)
    await runtime.aclose()


@contextlib.asynccontextmanager
async def bus_events(rt: Runtime) -> AsyncIterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    async def pump() -> None:
        async for event in rt.bus.listen():
            seen.append({k: v for k, v in event.items() if k != "id"})  # the stream id differs every run

    task = asyncio.create_task(pump())
    await asyncio.sleep(0.2)  # subscribed before anything is published
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def open_incident(rt: Runtime, minutes: int = 30) -> str:
    posted, _ = await post(
        rt, {"title": "Checkout down", "message": "Investigating.", "channels": [], "next_update_in_minutes": minutes}
    )
    return posted.incident_id


async def incident_row(rt: Runtime, incident_id: str) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        return dict((await conn.execute(select(incidents).where(incidents.c.id == incident_id))).mappings().one())


async def test_reminds_once_when_the_promise_passes(
    rt: Runtime, smtp: RecordingSMTP, twilio: tuple[TwilioProvider, str]
) -> None:
    provider, _ = twilio
    incident_id = await open_incident(rt)
    promised = (await incident_row(rt, incident_id))["next_update_at"]
    async with bus_events(rt) as events:
        assert await send_reminders(rt, now=promised - timedelta(seconds=1)) == []
        sent = await send_reminders(rt, now=promised + timedelta(seconds=1))
        assert [r.incident_id for r in sent] == [incident_id]
        assert sent[0].late_by_s == 1
        assert await send_reminders(rt, now=promised + timedelta(minutes=5)) == [], "reminded once only"
        await asyncio.sleep(0.3)
    assert [e for e in events if e["kind"] == "reminder"] == [
        {
            "kind": "reminder",
            "incident_id": incident_id,
            "title": "Checkout down",
            "next_update_at": promised.isoformat(),
            "late_by_s": 1,
        }
    ]
    assert sorted(r for m in smtp.received for r in m.rcpt_tos) == ["boss@example.com", "ic@example.com"]
    assert smtp.messages[0]["Subject"] == "[Update overdue] Checkout down"
    assert f"/console/compose?incident_id={incident_id}" in smtp.messages[0].get_body(("plain",)).get_content()
    assert [m["to"] for m in provider.messages] == ["+15005550001"]
    assert (await incident_row(rt, incident_id))["reminded_at"] == promised + timedelta(seconds=1)
    async with rt.engine.connect() as conn:
        audit = (await conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target))).all()
    assert ("system:reminders", "reminder", incident_id) in [tuple(a) for a in audit]

    # A new update keeps the promise again; missing the next one reminds again.
    await post(
        rt, {"status": "identified", "message": "Found it.", "channels": [], "next_update_in_minutes": 15}, incident_id
    )
    row = await incident_row(rt, incident_id)
    assert row["reminded_at"] is None
    assert await send_reminders(rt, now=row["next_update_at"] - timedelta(seconds=1)) == []
    assert len(await send_reminders(rt, now=row["next_update_at"] + timedelta(seconds=2))) == 1

    # Resolved incidents are never reminded.
    await post(rt, {"status": "resolved", "message": "Fixed.", "channels": []}, incident_id)
    assert await send_reminders(rt, now=utcnow() + timedelta(days=1)) == []


async def test_real_worker_reminds_within_one_cron_period(
    rt: Runtime, team_settings: Settings, smtp: RecordingSMTP
) -> None:
    period_s = team_settings.reminder_interval_s
    incident_id = await open_incident(rt)
    promised = utcnow() + timedelta(seconds=1.5)
    async with rt.engine.begin() as conn:
        await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(next_update_at=promised))
    async with running_worker(team_settings):
        deadline = time.monotonic() + 10
        reminded_at = None
        while reminded_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            reminded_at = (await incident_row(rt, incident_id))["reminded_at"]
        while len(smtp.received) < 2 and time.monotonic() < deadline:  # noqa: ASYNC110 - polls another thread
            await asyncio.sleep(0.05)  # the team is told just after the claim
    assert reminded_at is not None, "no reminder within 10 s"
    late_s = (reminded_at - promised).total_seconds()
    assert 0 <= late_s <= period_s + 0.5, f"reminded {late_s:.2f} s after the promise (period {period_s} s)"
    assert {r for m in smtp.received for r in m.rcpt_tos} == {"boss@example.com", "ic@example.com"}
