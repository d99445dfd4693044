"""The email channel against a real SMTP server (aiosmtpd in the test process)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import Sent
from broadcaster.errors import PermanentError, RetryableError
from channels.email import EmailChannel
from sandbox.serve import free_port
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.support.factories import email_recipients as recipients
from tests.support.factories import make_message
from tests.support.smtp_checks import session_lost_midway_keeps_what_was_sent


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


def email_channel(server: RecordingSMTP, **overrides: Any) -> EmailChannel:
    return EmailChannel(Settings(**server.settings(page_name="Example Status", **overrides)))


async def test_updates_of_one_incident_thread_per_recipient(smtp: RecordingSMTP) -> None:
    channel = email_channel(smtp)
    people = recipients("alice@example.org", "bob@example.net")
    first = make_message()
    second = make_message(update_id="upd000000002", update_number=2, status="identified")

    first_outcomes = await channel.deliver(first, channel.render(first), people, {})
    second_outcomes = await channel.deliver(second, channel.render(second), people, {})

    received = smtp.received
    assert [r.rcpt_tos for r in received] == [("alice@example.org",), ("bob@example.net",)] * 2
    assert all(r.mail_from == "status@example.com" for r in received)
    by_update = {1: smtp.messages[:2], 2: smtp.messages[2:]}
    for index, person in enumerate(people):
        root, reply = by_update[1][index], by_update[2][index]
        assert root["To"] == reply["To"] == person.address
        assert root["Message-ID"] == f"<i.inc000000001.{person.subscriber_id}@example.com>"
        assert root["In-Reply-To"] is None
        assert reply["Message-ID"] == f"<u.upd000000002.{person.subscriber_id}@example.com>"
        assert reply["In-Reply-To"] == reply["References"] == root["Message-ID"]
        assert reply["Subject"] == "[Identified] Elevated API error rates"
        assert first_outcomes[person.delivery_id] == Sent(provider_id=root["Message-ID"])
        assert second_outcomes[person.delivery_id] == Sent(provider_id=reply["Message-ID"])
        body = reply.get_body(("plain",))
        assert body is not None and person.unsubscribe_url in body.get_content()


async def test_hard_bounce_is_permanent_and_suppresses_others_are_sent(smtp: RecordingSMTP) -> None:
    smtp.refuse("gone@example.org", "550 5.1.1 <gone@example.org>: Recipient address rejected")
    smtp.refuse_data("spammy@example.org", "554 5.7.1 Message rejected as spam")
    channel = email_channel(smtp)
    people = recipients("alice@example.org", "gone@example.org", "spammy@example.org", "bob@example.net")
    message = make_message()

    outcomes = await channel.deliver(message, channel.render(message), people, {})

    assert isinstance(outcomes[1], Sent) and isinstance(outcomes[4], Sent)
    bounce = outcomes[2]
    assert isinstance(bounce, PermanentError) and bounce.suppress_recipient
    assert "550" in bounce.reason and "Recipient address rejected" in bounce.reason
    rejected = outcomes[3]
    assert isinstance(rejected, PermanentError) and not rejected.suppress_recipient
    assert "554" in rejected.reason
    assert [r.rcpt_tos for r in smtp.received] == [("alice@example.org",), ("bob@example.net",)]


async def test_deferral_is_retryable_per_recipient(smtp: RecordingSMTP) -> None:
    smtp.defer_for(60)
    channel = email_channel(smtp)
    message = make_message()

    outcomes = await channel.deliver(message, channel.render(message), recipients("a@example.org"), {})

    assert isinstance(outcomes[1], RetryableError) and "450" in outcomes[1].reason
    assert smtp.received == []


async def test_refused_connection_fails_the_batch_as_retryable() -> None:
    channel = EmailChannel(Settings(smtp_host="127.0.0.1", smtp_port=free_port(), email_from="s@example.com"))
    message = make_message()
    with pytest.raises(RetryableError):
        await channel.deliver(message, channel.render(message), recipients("a@example.org"), {})


async def test_421_greeting_fails_the_batch_until_the_server_is_back(smtp: RecordingSMTP) -> None:
    smtp.unavailable_for(0.5)
    channel = email_channel(smtp)
    message = make_message()
    rendition = channel.render(message)

    with pytest.raises(RetryableError, match="421"):
        await channel.deliver(message, rendition, recipients("a@example.org"), {})
    await asyncio.sleep(0.6)
    outcomes = await channel.deliver(message, rendition, recipients("a@example.org"), {})

    assert isinstance(outcomes[1], Sent)


async def test_session_lost_midway_keeps_what_was_sent(smtp: RecordingSMTP) -> None:
    await session_lost_midway_keeps_what_was_sent(smtp, email_channel(smtp))


async def test_session_lost_before_anything_was_sent_fails_the_batch(smtp: RecordingSMTP) -> None:
    smtp.hang_up_after(0)
    channel = email_channel(smtp)
    message = make_message()
    with pytest.raises(RetryableError, match="421"):
        await channel.deliver(message, channel.render(message), recipients("a@example.org", "b@example.org"), {})


async def test_send_one_sends_the_confirmation_mail(smtp: RecordingSMTP) -> None:
    channel = email_channel(smtp)
    link = "https://status.example.com/subscriptions/confirm?token=abc&x=1"

    message_id = await channel.send_one("new@example.org", **channel.render_confirmation(link))

    [received] = smtp.received
    assert received.rcpt_tos == ("new@example.org",)
    mail = received.message
    assert mail["Message-ID"] == message_id and message_id.endswith("@example.com>")
    assert mail["Subject"] == "Confirm your subscription to Example Status"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and link in text.get_content()
    assert html is not None and link.replace("&", "&amp;") in html.get_content()


async def test_send_one_translates_refusals(smtp: RecordingSMTP) -> None:
    smtp.refuse("gone@example.org")
    channel = email_channel(smtp)
    with pytest.raises(PermanentError) as caught:
        await channel.send_one("gone@example.org", "Hi", "text", "<p>html</p>")
    assert caught.value.suppress_recipient
