"""Checks the plain and the pipelining SMTP tests share: the same outcome over either send path."""

from __future__ import annotations

from broadcaster.delivery.channel import Sent
from broadcaster.errors import RetryableError
from channels.email import EmailChannel
from sandbox.smtp import RecordingSMTP
from tests.support.factories import email_recipients, make_message


async def session_lost_midway_keeps_what_was_sent(smtp: RecordingSMTP, channel: EmailChannel) -> None:
    """The relay hangs up after two mails of five: those two are sent, the rest retryable (421)."""
    smtp.hang_up_after(2)
    message = make_message()
    people = email_recipients(*(f"user{n}@example.org" for n in range(5)))

    outcomes = await channel.deliver(message, channel.render(message), people, {})

    assert [type(outcomes[p.delivery_id]) for p in people] == [Sent, Sent] + [RetryableError] * 3
    lost = outcomes[3]
    assert isinstance(lost, RetryableError) and "421" in lost.reason
    assert len(smtp.received) == 2
