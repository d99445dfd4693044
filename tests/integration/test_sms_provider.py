"""The real SMS channel against a local Twilio Messages API over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import Recipient, Sent
from broadcaster.errors import PermanentError, RateLimited, RetryableError
from broadcaster.render import render_template
from channels.base import ChannelContext
from channels.sms import SmsChannel
from sandbox.providers.twilio import TwilioProvider
from sandbox.serve import free_port, serve_app
from tests.support.factories import make_message

PUBLIC_URL = "https://status.example.com"


@pytest.fixture
def provider() -> TwilioProvider:
    return TwilioProvider()


@pytest.fixture
async def base_url(provider: TwilioProvider) -> AsyncIterator[str]:
    async with serve_app(provider.app) as url:
        yield url


def make_channel(provider: TwilioProvider, base_url: str, **overrides: Any) -> SmsChannel:
    values: dict[str, Any] = dict(
        twilio_base_url=base_url,
        twilio_account_sid=provider.account_sid,
        twilio_auth_token=provider.auth_token,
        twilio_from=next(iter(provider.senders)),
        public_url=PUBLIC_URL,
        sms_concurrency=4,
        sms_rate_per_s=500.0,
    )
    values.update(overrides)
    channel = SmsChannel.from_settings(Settings(_env_file=None, **values), ChannelContext())  # type: ignore[call-arg]
    assert channel is not None
    return channel


def recipients(*numbers: str) -> list[Recipient]:
    return [Recipient(delivery_id=i, subscriber_id=f"sub{i}", address=n) for i, n in enumerate(numbers, 1)]


async def deliver(channel: SmsChannel, batch: list[Recipient], **message: Any) -> dict[int, Any]:
    msg = make_message(**message)
    try:
        return dict(await channel.deliver(msg, channel.render(msg), batch, {}))
    finally:
        await channel.aclose()


async def test_messages_arrive_as_rendered(provider: TwilioProvider, base_url: str) -> None:
    channel = make_channel(provider, base_url)
    numbers = [f"+1555010{i:04d}" for i in range(20)]
    message = make_message()
    text = channel.render(message)["text"]
    outcomes = await deliver(channel, recipients(*numbers))

    assert sorted(m["to"] for m in provider.messages) == numbers  # each exactly once
    by_sid = {m["sid"]: m for m in provider.messages}
    for outcome in outcomes.values():
        assert isinstance(outcome, Sent)
        assert outcome.provider_id in by_sid
    for m in provider.messages:
        assert m["body"] == text
        assert m["from"] == "+15005550006"
        assert m["status"] == "queued"
        assert m["status_callback"] == f"{PUBLIC_URL}/webhooks/twilio/status"


async def test_messaging_service_sender(provider: TwilioProvider, base_url: str) -> None:
    service = next(iter(provider.messaging_service_sids))
    channel = make_channel(provider, base_url, twilio_from=None, twilio_messaging_service_sid=service)
    outcomes = await deliver(channel, recipients("+15550100001"))
    assert isinstance(outcomes[1], Sent)
    (received,) = provider.messages
    assert received["messaging_service_sid"] == service and received["from"] is None


async def test_send_text_confirmation_code(provider: TwilioProvider, base_url: str) -> None:
    channel = make_channel(provider, base_url)
    body = render_template("sms/confirm.txt", page_name="Example Status", code="123456")
    sent = await channel.send_text("+15550100001", body)
    await channel.aclose()
    assert provider.bodies_to("+15550100001") == [body]
    assert body.startswith("Your Example Status status alerts code is 123456.")
    assert sent.provider_id == provider.messages[0]["sid"]


async def test_wrong_credentials_fail_permanently(provider: TwilioProvider, base_url: str) -> None:
    channel = make_channel(provider, base_url, twilio_auth_token="not-the-token")
    outcomes = await deliver(channel, recipients("+15550100001", "+15550100002"))
    assert provider.messages == [] and provider.requests == 2
    for outcome in outcomes.values():
        assert isinstance(outcome, PermanentError) and not outcome.suppress_recipient
        assert "401" in outcome.reason and "20003" in outcome.reason


async def test_dead_numbers_are_suppressed(provider: TwilioProvider, base_url: str) -> None:
    provider.opted_out.add("+15550100002")
    channel = make_channel(provider, base_url)
    outcomes = await deliver(channel, recipients("+15550100001", "+15550100002", "555-0100"))
    assert isinstance(outcomes[1], Sent)
    for delivery_id, code in ((2, "21610"), (3, "21211")):
        outcome = outcomes[delivery_id]
        assert isinstance(outcome, PermanentError) and outcome.suppress_recipient
        assert code in outcome.reason
    assert [m["to"] for m in provider.messages] == ["+15550100001"]


async def test_rate_limit_then_retry(provider: TwilioProvider, base_url: str) -> None:
    provider.throttle(times=1, retry_after_s=2)
    channel = make_channel(provider, base_url)
    outcome = (await deliver(channel, recipients("+15550100001")))[1]
    assert isinstance(outcome, RateLimited) and outcome.retry_after_s == 2.0
    assert isinstance((await deliver(channel, recipients("+15550100001")))[1], Sent)
    assert len(provider.messages) == 1


async def test_server_error_then_retry(provider: TwilioProvider, base_url: str) -> None:
    provider.fail(times=1, status=503)
    channel = make_channel(provider, base_url)
    outcome = (await deliver(channel, recipients("+15550100001")))[1]
    assert isinstance(outcome, RetryableError) and not isinstance(outcome, RateLimited)
    assert isinstance((await deliver(channel, recipients("+15550100001")))[1], Sent)


async def test_provider_down_is_retryable(provider: TwilioProvider) -> None:
    channel = make_channel(provider, f"http://127.0.0.1:{free_port()}")
    outcome = (await deliver(channel, recipients("+15550100001")))[1]
    assert isinstance(outcome, RetryableError)
