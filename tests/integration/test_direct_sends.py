"""One-off messages (confirmations, reminders) go through a channel's ``DirectSender`` and each is a ledger row.

The rows belong to no update (``update_id`` null) and say what they were (``kind``); a sent
one carries the provider's id, a refused one the reason. Real SMTP (aiosmtpd) and the local
Twilio app; nothing faked inside the channels.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import deliveries, incidents
from broadcaster.delivery import direct, ledger
from broadcaster.delivery.channel import DirectMessage, DirectSender
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.domain.users import create_user
from broadcaster.errors import PermanentError
from broadcaster.jobs.confirmations import send_confirmation
from broadcaster.jobs.reminders import send_reminders
from broadcaster.models import DeliveryKind
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from sandbox.providers.twilio import TwilioProvider
from sandbox.serve import serve_app
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings, run_worker
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
async def rt(
    database_url: str, clean_database: None, smtp: RecordingSMTP, twilio: tuple[TwilioProvider, str]
) -> AsyncIterator[Runtime]:
    provider, url = twilio
    settings: Settings = make_settings(
        database_url,
        **smtp.settings(),
        twilio_base_url=url,
        twilio_account_sid=provider.account_sid,
        twilio_auth_token=provider.auth_token,
        twilio_from=next(iter(provider.senders)),
        sms_rate_per_s=100.0,
    )
    runtime = Runtime.build(settings)
    yield runtime
    pool = await runtime.queue.pool()
    await pool.delete(settings.queue_name)
    await runtime.aclose()


async def one_off_rows(rt: Runtime) -> list[dict[str, Any]]:
    async with rt.engine.connect() as conn:
        result = await conn.execute(
            select(deliveries)
            .where(deliveries.c.update_id.is_(None))
            .order_by(deliveries.c.channel, deliveries.c.recipient)
        )
        return [dict(r) for r in result.mappings()]


async def test_the_email_and_sms_channels_are_direct_senders(rt: Runtime) -> None:
    assert isinstance(rt.registry.get("email"), DirectSender)
    assert isinstance(rt.registry.get("sms"), DirectSender)
    assert not isinstance(rt.registry.get("webhook"), DirectSender)


async def test_each_confirmation_is_a_ledger_row(
    rt: Runtime, smtp: RecordingSMTP, twilio: tuple[TwilioProvider, str]
) -> None:
    provider, _ = twilio
    async with rt.engine.begin() as conn:
        mail, _ = await upsert_subscriber(
            conn, SubscriberIn(channel="email", address="new@example.org"), allow_private_webhooks=True
        )
        text, _ = await upsert_subscriber(
            conn, SubscriberIn(channel="sms", address="+15005550009"), allow_private_webhooks=True
        )
    assert await send_confirmation(rt, mail["id"]) == "sent"
    assert await send_confirmation(rt, text["id"]) == "sent"

    [received] = smtp.messages
    assert received["Subject"] == "Confirm your subscription to Test Status"
    assert "/subscriptions/confirm?token=" in received.get_body(("plain",)).get_content()
    [sms] = provider.messages
    rows = {row["channel"]: row for row in await one_off_rows(rt)}
    assert set(rows) == {"email", "sms"}
    assert {k: rows["email"][k] for k in ("kind", "recipient", "address", "state", "attempts", "last_error")} == {
        "kind": "confirmation",
        "recipient": mail["id"],
        "address": "new@example.org",
        "state": "sent",
        "attempts": 1,
        "last_error": None,
    }
    assert rows["email"]["provider_id"] == received["Message-ID"]
    assert rows["email"]["sent_at"] is not None
    assert (rows["sms"]["kind"], rows["sms"]["recipient"], rows["sms"]["address"]) == (
        "confirmation",
        text["id"],
        "+15005550009",
    )
    assert rows["sms"]["provider_id"] == sms["sid"]


async def test_a_refused_one_off_is_a_failed_row_with_the_reason(rt: Runtime, smtp: RecordingSMTP) -> None:
    smtp.refuse("gone@example.org")
    channel = rt.registry.get("email")
    assert isinstance(channel, DirectSender)
    with pytest.raises(PermanentError) as caught:
        await direct.send(
            rt.engine,
            channel,
            DeliveryKind.REMINDER,
            "user:gone",
            "gone@example.org",
            DirectMessage(subject="Hi", text="Hello"),
        )
    [row] = await one_off_rows(rt)
    assert (row["kind"], row["recipient"], row["state"], row["provider_id"], row["sent_at"]) == (
        "reminder",
        "user:gone",
        "failed",
        None,
        None,
    )
    assert row["last_error"] == caught.value.reason and "550" in row["last_error"]


async def test_reminders_are_ledger_rows_and_fan_out_rows_stay_updates(
    rt: Runtime, smtp: RecordingSMTP, twilio: tuple[TwilioProvider, str]
) -> None:
    provider, _ = twilio
    async with rt.engine.begin() as conn:
        await create_user(conn, "ic", PASSWORD, "commander", email="ic@example.com", phone="+15005550001")
        await create_user(conn, "boss", PASSWORD, "admin", email="boss@example.com")
    smtp.refuse("boss@example.com")
    posted, _ = await post(
        rt,
        {
            "title": "Checkout down",
            "message": "Investigating.",
            "channels": ["status_page"],
            "next_update_in_minutes": 30,
        },
    )
    async with rt.engine.connect() as conn:
        promised = (
            await conn.execute(select(incidents.c.next_update_at).where(incidents.c.id == posted.incident_id))
        ).scalar_one()
    assert len(await send_reminders(rt, now=promised + timedelta(seconds=1))) == 1

    rows = [(r["channel"], r["kind"], r["recipient"], r["address"], r["state"]) for r in await one_off_rows(rt)]
    assert rows == [
        ("email", "reminder", "user:boss", "boss@example.com", "failed"),
        ("email", "reminder", "user:ic", "ic@example.com", "sent"),
        ("sms", "reminder", "user:ic", "+15005550001", "sent"),
    ]
    [mail] = smtp.messages
    [text] = provider.messages
    assert text["body"].startswith("[Update overdue] Checkout down: ")
    assert mail["Subject"] == "[Update overdue] Checkout down"
    async with rt.engine.connect() as conn:
        kinds = (await conn.execute(select(deliveries.c.kind).where(deliveries.c.update_id.is_not(None)))).scalars()
        assert set(kinds) <= {"update"}


async def test_a_one_off_never_hides_the_update_a_channel_shows(rt: Runtime, smtp: RecordingSMTP) -> None:
    async with rt.engine.begin() as conn:
        await upsert_subscriber(
            conn, SubscriberIn(channel="email", address="sub@example.org", confirmed=True), allow_private_webhooks=True
        )
    posted, _ = await post(rt, {"title": "Checkout down", "message": "Investigating.", "channels": ["email"]})
    await run_worker(rt.settings)
    async with rt.engine.connect() as conn:
        assert (await ledger.current_updates(conn))["email"]["update_id"] == posted.update_id
    channel = rt.registry.get("email")
    assert isinstance(channel, DirectSender)
    await direct.send(
        rt.engine,
        channel,
        DeliveryKind.REMINDER,
        "user:ic",
        "ic@example.com",
        DirectMessage(subject="Hi", text="Hello"),
    )
    async with rt.engine.connect() as conn:
        assert (await ledger.current_updates(conn))["email"]["update_id"] == posted.update_id
