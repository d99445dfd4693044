"""SMS channel: renditions fit the segment budget; Twilio answers map to the error tree."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import Recipient, Sent, SubscriberChannel
from broadcaster.errors import ConfigError, DeliveryError, PermanentError, RateLimited, RetryableError
from broadcaster.message import Message
from channels.base import ChannelContext
from channels.sms import GSM7, UCS2, SmsChannel, budget_for, encoding_of, gsm7_septets, segment_count, utf16_units
from tests.support.factories import make_message

SID = "AC" + "1" * 32
FROM = "+15005550006"
LINK = make_message().public_url


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        twilio_account_sid=SID,
        twilio_auth_token="secret-token",
        twilio_from=FROM,
        public_url="https://status.example.com",
        sms_rate_per_s=1000.0,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# --- rendering --------------------------------------------------------------------------

SMART_PUNCTUATION = "We\u2019re on it \u2014 \u201ccheckout\u201d fails\u2026 Next update soon."
WORDS_400 = ("Payment processing degraded for card transactions in several regions " * 6)[:400]
RENDER_CASES = [
    # id, message overrides, settings overrides, encoding, segments
    ("plain-ascii", {}, {}, GSM7, 1),
    ("gsm7-extension", {"incident_title": "Payments € [EU] slow"}, {}, GSM7, 1),
    ("gsm7-extension-counts-two", {"incident_title": "€" * 20 + " [EU]"}, {}, GSM7, 2),  # 146 chars
    ("gsm7-extension-long", {"incident_title": "Checkout € [EU] {eu-west} ~ slow | retry"}, {}, GSM7, 2),
    ("smart-punctuation-folds-to-gsm7", {"body_text": SMART_PUNCTUATION}, {}, GSM7, 1),
    ("emoji-forces-ucs2", {"body_text": "Checkout is failing 🔥 for some users. More soon."}, {}, UCS2, 2),
    ("cyrillic-forces-ucs2", {"incident_title": "Сбой оплаты картами"}, {}, UCS2, 2),
    ("long-title-gsm7", {"incident_title": WORDS_400}, {}, GSM7, 2),
    ("long-title-one-segment", {"incident_title": WORDS_400}, {"sms_max_segments": 1}, GSM7, 1),
    ("long-title-ucs2", {"incident_title": "Сбой " + WORDS_400}, {}, UCS2, 2),
    ("long-title-emoji-one-segment", {"incident_title": "🔥 " + WORDS_400}, {"sms_max_segments": 1}, UCS2, 1),
    ("long-body-cut-at-word", {"body_text": "Requests " + "to the API time out " * 30 + "."}, {}, GSM7, 2),
    ("escapes-straddle-segments", {"incident_title": "€€ [x] " * 80}, {}, GSM7, 2),
    ("surrogates-straddle-segments", {"incident_title": "😀😀 x " * 80}, {}, UCS2, 2),
    ("drill", {"drill": True, "incident_title": WORDS_400}, {}, GSM7, 2),
    ("three-segments", {"incident_title": WORDS_400}, {"sms_max_segments": 3}, GSM7, 3),
]


def check_rendition(message: Message, channel: SmsChannel, encoding: str, segments: int) -> dict[str, Any]:
    rendition = channel.render(message)
    text = rendition["text"]
    max_segments = channel.settings.sms_max_segments
    measure: Callable[[str], int] = gsm7_septets if encoding == GSM7 else utf16_units
    assert rendition == {
        "text": text,
        "encoding": encoding,
        "segments": segments,
        "characters": len(text),
        "max_segments": max_segments,
    }
    assert encoding_of(text) == encoding
    assert segment_count(text) == segments <= max_segments
    assert measure(text) <= budget_for(encoding, max_segments)
    assert text.endswith(" " + message.public_url)
    assert text.startswith("DRILL [") if message.drill else text.startswith(f"[{message.status_label}]")
    assert "\n" not in text
    assert channel.render(message) == rendition  # deterministic
    return rendition


@pytest.mark.parametrize(
    ("overrides", "config", "encoding", "segments"),
    [case[1:] for case in RENDER_CASES],
    ids=[case[0] for case in RENDER_CASES],
)
def test_render(overrides: dict[str, Any], config: dict[str, Any], encoding: str, segments: int) -> None:
    check_rendition(make_message(**overrides), SmsChannel(settings(**config)), encoding, segments)


def test_render_plain_text_is_the_short_form() -> None:
    text = SmsChannel(settings()).render(make_message())["text"]
    sentence = "We are investigating elevated error rates on the API."
    assert text == f"[Investigating] Elevated API error rates: {sentence} {LINK}"


def test_render_cut_fills_the_budget_and_keeps_words() -> None:
    text = SmsChannel(settings()).render(make_message(incident_title=WORDS_400))["text"]
    head = text.removesuffix(" " + LINK)
    assert head.endswith("...")  # short_text's ellipsis, folded to GSM-7
    assert WORDS_400.startswith(head.removeprefix("[Investigating] ").removesuffix("..."))
    assert gsm7_septets(text) > 306 - 20


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 153, 3),  # the escape pair moves whole
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
        ("😀" * 35, 1),
        ("😀" * 36, 2),
        ("ж" * 66 + "😀" + "ж" * 66, 3),  # the surrogate pair moves whole
        ("é" * 160, 1),  # é is in the GSM-7 basic table
    ],
)
def test_segment_count(text: str, segments: int) -> None:
    assert segment_count(text) == segments


# --- configuration ----------------------------------------------------------------------


def test_from_settings_disabled_without_credentials() -> None:
    absent = settings(twilio_account_sid=None, twilio_auth_token=None)
    assert SmsChannel.from_settings(absent, ChannelContext()) is None


@pytest.mark.parametrize(
    "config",
    [{"twilio_from": None}, {"twilio_auth_token": None}, {"twilio_account_sid": None}, {"sms_max_segments": 0}],
)
def test_from_settings_half_configured(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SmsChannel.from_settings(settings(**config), ChannelContext())


def test_is_a_subscriber_channel_and_hides_the_token() -> None:
    channel = SmsChannel.from_settings(settings(), ChannelContext())
    assert isinstance(channel, SubscriberChannel)
    assert "secret-token" not in repr(channel)


# --- sending: Twilio's answers at the transport seam ----------------------------------


def twilio(status: int, code: int | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if status == 201:
        return httpx.Response(201, json={"sid": "SM" + "f" * 32, "status": "queued"})
    body = {"code": code, "message": f"error {code}", "more_info": "", "status": status}
    return httpx.Response(status, json=body, headers=headers)


Handler = Callable[[httpx.Request], httpx.Response]


def recipients(*indexes: int) -> list[Recipient]:
    return [Recipient(delivery_id=i, subscriber_id=f"s{i}", address=f"+1555123000{i}") for i in indexes]


def raises(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


# id, the provider's answer, the outcome's class, attributes of the outcome
ANSWER_CASES: list[tuple[str, Handler, type[Exception] | None, dict[str, Any]]] = [
    ("201", lambda r: twilio(201), None, {"provider_id": "SM" + "f" * 32}),
    ("201-without-json", lambda r: httpx.Response(201, text="ok"), None, {"provider_id": None}),
    ("429-retry-after", lambda r: twilio(429, 20429, {"Retry-After": "7"}), RateLimited, {"retry_after_s": 7.0}),
    ("429-no-header", lambda r: twilio(429, 20429), RateLimited, {"retry_after_s": None}),
    ("400-21611-queue-full", lambda r: twilio(400, 21611), RateLimited, {}),
    ("500", lambda r: twilio(500, 20500), RetryableError, {}),
    ("503-html", lambda r: httpx.Response(503, text="<html>down</html>"), RetryableError, {}),
    ("timeout", raises(httpx.ReadTimeout("slow")), RetryableError, {}),
    ("connection-refused", raises(httpx.ConnectError("refused")), RetryableError, {}),
    ("21211-invalid-number", lambda r: twilio(400, 21211), PermanentError, {"suppress_recipient": True}),
    ("21610-opted-out", lambda r: twilio(400, 21610), PermanentError, {"suppress_recipient": True}),
    ("21614-not-mobile", lambda r: twilio(400, 21614), PermanentError, {"suppress_recipient": True}),
    ("21612-unreachable", lambda r: twilio(400, 21612), PermanentError, {"suppress_recipient": True}),
    ("21408-region-not-enabled", lambda r: twilio(400, 21408), PermanentError, {"suppress_recipient": False}),
    ("401-bad-credentials", lambda r: twilio(401, 20003), PermanentError, {"suppress_recipient": False}),
]


def channel_with(handler: Handler, **config: Any) -> SmsChannel:
    return SmsChannel(settings(**config), transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("handler", "error", "attributes"), [case[1:] for case in ANSWER_CASES], ids=[case[0] for case in ANSWER_CASES]
)
async def test_answers(handler: Handler, error: type[Exception] | None, attributes: dict[str, Any]) -> None:
    channel = channel_with(handler)
    recipient = Recipient(delivery_id=41, subscriber_id="sub1", address="+15551230001")
    message = make_message()
    outcomes = await channel.deliver(message, channel.render(message), [recipient], {})
    await channel.aclose()
    outcome = outcomes[41]
    assert type(outcome) is (error or Sent)
    for name, value in attributes.items():
        assert getattr(outcome, name) == value
    if isinstance(outcome, DeliveryError):
        assert outcome.reason
    if isinstance(outcome, PermanentError):
        assert str(handler(httpx.Request("POST", "/")).json()["code"]) in outcome.reason


async def test_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return twilio(201)

    channel = channel_with(handler, twilio_base_url="https://twilio.test/")
    assert await channel.send_text("+15551230001", "Your code is 123456") == Sent("SM" + "f" * 32)
    await channel.aclose()
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"https://twilio.test/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["authorization"] == httpx.BasicAuth(SID, "secret-token")._auth_header
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "To": ["+15551230001"],
        "From": [FROM],
        "Body": ["Your code is 123456"],
        "StatusCallback": ["https://status.example.com/webhooks/twilio/status"],
    }


async def test_messaging_service_replaces_from() -> None:
    forms: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        forms.append(parse_qs(request.content.decode()))
        return twilio(201)

    channel = channel_with(handler, twilio_from=None, twilio_messaging_service_sid="MG" + "2" * 32)
    await channel.send_text("+15551230001", "hello")
    await channel.aclose()
    assert forms[0]["MessagingServiceSid"] == ["MG" + "2" * 32]
    assert "From" not in forms[0]


async def test_deliver_reports_each_recipient() -> None:
    answers = {"+15551230001": twilio(201), "+15551230002": twilio(400, 21610), "+15551230003": twilio(500)}

    def handler(request: httpx.Request) -> httpx.Response:
        return answers[parse_qs(request.content.decode())["To"][0]]

    channel = channel_with(handler)
    message = make_message()
    outcomes = await channel.deliver(message, channel.render(message), recipients(1, 2, 3), {})
    await channel.aclose()
    assert isinstance(outcomes[1], Sent)
    assert isinstance(outcomes[2], PermanentError) and outcomes[2].suppress_recipient
    assert isinstance(outcomes[3], RetryableError)


async def test_deliver_stops_sending_after_429() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(parse_qs(request.content.decode())["To"][0])
        return twilio(429, 20429, {"Retry-After": "3"}) if len(calls) == 2 else twilio(201)

    channel = channel_with(handler, sms_concurrency=1)
    message = make_message()
    outcomes = await channel.deliver(message, channel.render(message), recipients(*range(5)), {})
    await channel.aclose()
    assert len(calls) == 2
    assert isinstance(outcomes[0], Sent)
    for i in (1, 2, 3, 4):
        outcome = outcomes[i]
        assert isinstance(outcome, RateLimited) and outcome.retry_after_s == 3.0


async def test_rate_per_s_paces_requests() -> None:
    channel = channel_with(lambda r: twilio(201), sms_rate_per_s=20.0)
    message = make_message()
    started = time.monotonic()
    await channel.deliver(message, channel.render(message), recipients(*range(5)), {})
    elapsed = time.monotonic() - started
    await channel.aclose()
    assert elapsed >= 4 / 20.0 - 0.01


async def test_one_pooled_client_reopened_after_aclose() -> None:
    channel = channel_with(lambda r: twilio(201))
    await channel.send_text("+15551230001", "a")
    client = channel._client
    await channel.send_text("+15551230001", "b")
    assert channel._client is client is not None
    await channel.aclose()
    assert client.is_closed and channel._client is None
    await channel.send_text("+15551230001", "c")
    await channel.aclose()
