"""SMS through Twilio's Messages API (or anything that speaks it).

Enabled by ``BROADCASTER_TWILIO_ACCOUNT_SID`` + ``_AUTH_TOKEN`` and one sender:
``_TWILIO_FROM`` (a number) or ``_TWILIO_MESSAGING_SERVICE_SID`` (which wins when both are
set). A rendition is the deterministic short text (``[Status] Title: first sentence. <link>``)
fitted into ``sms_max_segments`` segments, counted in GSM-7 septets when every character
has a GSM-7 code (after folding typographic quotes and dashes) and in UTF-16 code units
(UCS-2) otherwise. A reader whose language the update lacks gets the default text after the
message's ``translation_note``, counted in the same budget; when that note would leave no room
for the status and title, a shorter one ("In English:") stands in for it::

    SmsChannel(settings).render(message) == {
        "text": "[Investigating] Elevated API error rates: We are investigating elevated error"
                " rates on the API. https://status.example.com/incidents/inc000000001",
        "encoding": "GSM-7", "segments": 1, "characters": 145, "max_segments": 2,
    }
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Self

import httpx
from pydantic import Field, SecretStr, model_validator

from broadcaster.i18n import gettext, language_name_in, using
from broadcaster.message import one_line
from channels._segments import GSM7 as GSM7  # the counting is importable from here, as it always was
from channels._segments import UCS2 as UCS2
from channels._segments import budget_for as budget_for
from channels._segments import encoding_of as encoding_of
from channels._segments import fold_gsm7 as fold_gsm7
from channels._segments import gsm7_septets as gsm7_septets
from channels._segments import is_gsm7 as is_gsm7
from channels._segments import segment_count as segment_count
from channels._segments import utf16_units as utf16_units
from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    ConfigError,
    DeliveryError,
    DirectMessage,
    LimitUnit,
    Message,
    Outcome,
    PermanentError,
    RateLimited,
    Recipient,
    Rendition,
    Sent,
    Settings,
    Thread,
    http_error,
    map_transport_errors,
    rate_limit_reset_seconds,
    render_template,
    short_text,
)

# Twilio error codes that say the recipient's number can never receive our SMS.
# https://www.twilio.com/docs/api/errors
DEAD_NUMBER_CODES = frozenset(
    {
        21211,  # invalid 'To' number
        21217,  # number does not appear to be valid
        21401,  # invalid phone number
        21407,  # number type does not support SMS
        21421,  # phone number is invalid
        21610,  # recipient replied STOP
        21612,  # 'To' not reachable via SMS
        21614,  # 'To' is not a mobile number
    }
)
# 400s that are about load, not the message: Twilio's queue for the sender is full.
RETRYABLE_CODES = frozenset({21611, 14107, 20429})

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"


def short_note(message: Message) -> str:
    """``In English:``, in the reader's language: the SMS's note when the whole one leaves no room."""
    written = language_name_in(message.content_language, message.language)
    # translators: starts an SMS whose update is in another language; %(language)s as "anglais", "Englisch"
    return gettext("In %(language)s:", language=written)


def translate_response(response: httpx.Response) -> Sent:
    """Twilio's answer as a ``Sent``, or the ``DeliveryError`` it amounts to (raised)."""
    if response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = None  # accepted all the same; only the id is lost
        sid = body.get("sid") if isinstance(body, dict) else None
        return Sent(provider_id=sid if isinstance(sid, str) else None)
    code, text = _twilio_error(response)
    reason = f"twilio {response.status_code}" + (f" error {code}" if code is not None else "") + f": {text}"
    if code in RETRYABLE_CODES:
        raise RateLimited(reason, retry_after_s=rate_limit_reset_seconds(response.headers))
    if code in DEAD_NUMBER_CODES:
        raise PermanentError(reason, suppress_recipient=True)
    raise http_error(response, reason)


def _twilio_error(response: httpx.Response) -> tuple[int | None, str]:
    """``(code, message)`` from Twilio's error body ``{"code", "message", "more_info", "status"}``."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    if not isinstance(body, dict):
        return None, str(body)[:200]
    code = body.get("code")
    message = body.get("message") or body.get("detail") or response.reason_phrase
    return (code if isinstance(code, int) else None), str(message)


class _Pacer:
    """Spaces calls at least ``1 / rate_per_s`` apart across every caller of the channel."""

    def __init__(self, rate_per_s: float) -> None:
        self._interval_s = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._next_at = 0.0

    async def wait(self) -> None:
        if not self._interval_s:
            return
        now = time.monotonic()
        # Reserve a slot before sleeping, so concurrent callers queue up behind each other.
        slot = max(now, self._next_at)
        self._next_at = slot + self._interval_s
        if slot > now:
            await asyncio.sleep(slot - now)


DEFAULT_MAX_SEGMENTS = 2


class SmsSettings(ChannelSettings):
    """``BROADCASTER_TWILIO_ACCOUNT_SID`` and ``_AUTH_TOKEN`` (both, or neither) and a sender
    (``_TWILIO_FROM`` or ``_TWILIO_MESSAGING_SERVICE_SID``); ``_TWILIO_BASE_URL``; the
    ``BROADCASTER_SMS_MAX_SEGMENTS`` budget and the ``_SMS_RATE_PER_S`` / ``_SMS_CONCURRENCY`` pace."""

    title: ClassVar[str] = "SMS"
    required: ClassVar[tuple[str, ...]] = ("twilio_account_sid", "twilio_auth_token")
    example: ClassVar[Mapping[str, Any]] = {
        "twilio_base_url": "https://twilio.example.test",
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": "token",
        "twilio_from": "+15005550006",
    }

    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    sms_max_segments: int = Field(DEFAULT_MAX_SEGMENTS, ge=1)
    sms_rate_per_s: float = Field(50.0, gt=0)
    sms_concurrency: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _has_a_sender(self) -> Self:
        if self.twilio_account_sid and not (self.twilio_from or self.twilio_messaging_service_sid):
            raise ValueError("SMS needs a sender: BROADCASTER_TWILIO_FROM or BROADCASTER_TWILIO_MESSAGING_SERVICE_SID")
        return self


class SmsChannel:
    """SMS to phone subscribers (E.164 addresses) through a Twilio-compatible Messages API.

    Built from the core ``settings`` (``public_url`` for status callbacks, ``http_timeout_s``)
    and ``config``, the channel's own (read from ``settings`` when not given).
    """

    name: ClassVar[str] = "sms"
    kind: ClassVar[ChannelKind] = ChannelKind.SUBSCRIBER
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = True  # a drill reaches the drill audience only
    title: ClassVar[str] = "SMS"
    limit: ClassVar[int | None] = DEFAULT_MAX_SEGMENTS  # BROADCASTER_SMS_MAX_SEGMENTS sets it per deployment
    limit_unit: ClassVar[LimitUnit | None] = LimitUnit.SMS_SEGMENTS
    settings_class: ClassVar[type[ChannelSettings]] = SmsSettings
    template: ClassVar[str] = "sms/update.txt"

    def __init__(
        self,
        settings: Settings,
        config: SmsSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        config = config if config is not None else SmsSettings.from_core(settings)
        if config is None:
            raise ConfigError("SMS needs BROADCASTER_TWILIO_ACCOUNT_SID and BROADCASTER_TWILIO_AUTH_TOKEN")
        assert config.twilio_account_sid and config.twilio_auth_token  # required
        self.settings = config
        self.public_url = settings.public_url
        self.timeout_s = settings.http_timeout_s
        self._account_sid = config.twilio_account_sid
        self._auth_token = config.twilio_auth_token
        self._account_path = f"/2010-04-01/Accounts/{self._account_sid}.json"
        self._messages_path = f"/2010-04-01/Accounts/{self._account_sid}/Messages.json"
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._pacer = _Pacer(config.sms_rate_per_s)

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = SmsSettings.from_core(settings)
        return None if config is None else cls(settings, config, transport=context.http_transport)

    # rendering

    def render(self, message: Message) -> Rendition:
        """The SMS every reader of ``message.language`` gets, and what it costs in segments."""
        with using(message.language):
            text = self.render_text(message)
        return {
            "text": text,
            "encoding": encoding_of(text),
            "segments": segment_count(text),
            "characters": len(text),
            "max_segments": self.settings.sms_max_segments,
        }

    def render_text(self, message: Message) -> str:
        """The SMS body: GSM-7 with a 306-septet budget when it can be, UCS-2 with 134 otherwise."""
        if not message.translation_note:
            return self._encode_and_fit(message, "")
        text = self._encode_and_fit(message, message.translation_note)
        head = one_line(f"[{message.status_label}] {message.incident_title}")
        if head in text or fold_gsm7(head) in text:
            return text
        return self._encode_and_fit(message, short_note(message))

    def _encode_and_fit(self, message: Message, note: str) -> str:
        folded = replace(
            message, incident_title=fold_gsm7(message.incident_title), body_text=fold_gsm7(message.body_text)
        )
        if is_gsm7(fold_gsm7(self._fill(folded, note, 10**9, len))):
            # short_text's own ellipsis is not GSM-7: count it as the "..." it becomes.
            return self._fit(folded, note, GSM7, lambda s: gsm7_septets(fold_gsm7(s)), fold_gsm7)
        return self._fit(message, note, UCS2, utf16_units, str)

    def _fit(
        self,
        message: Message,
        note: str,
        encoding: str,
        measure: Callable[[str], int],
        finish: Callable[[str], str],
    ) -> str:
        max_segments = self.settings.sms_max_segments
        budget = budget_for(encoding, max_segments)
        text = finish(self._fill(message, note, budget, measure))
        # The budget is exact except where an escape or surrogate pair would straddle a
        # segment boundary; shave a unit at a time until the segment count holds.
        while budget > 0 and segment_count(text) > max_segments:
            budget -= 1
            text = finish(self._fill(message, note, budget, measure))
        return text

    def _fill(self, message: Message, note: str, budget: int, measure: Callable[[str], int]) -> str:
        overhead = measure(self._template(message, note, ""))
        return self._template(message, note, short_text(message, budget - overhead, measure))

    def _template(self, message: Message, note: str, text: str) -> str:
        return render_template(self.template, message=message, note=note, text=text).strip()

    # sending

    async def deliver(
        self, message: Message, rendition: Rendition, recipients: Sequence[Recipient], thread: Thread
    ) -> Mapping[int, Outcome]:
        body = str(rendition["text"])
        throttled: list[RateLimited] = []

        async def one(recipient: Recipient) -> Outcome:
            try:
                return await self._send(recipient.address, body, throttled)
            except RateLimited as exc:
                throttled.append(exc)
                return exc
            except DeliveryError as exc:
                return exc

        outcomes = await asyncio.gather(*(one(r) for r in recipients))
        return {r.delivery_id: outcome for r, outcome in zip(recipients, outcomes, strict=True)}

    async def send_text(self, to: str, body: str) -> Sent:
        """Send one SMS (a confirmation code, a HELP reply); raise a ``DeliveryError`` on failure."""
        return await self._send(to, body, [])

    async def send_direct(self, to: str, message: DirectMessage) -> Sent:
        """``DirectSender``: ``message.sms_text`` as one SMS to ``to``."""
        return await self.send_text(to, message.sms_text)

    async def _send(self, to: str, body: str, throttled: Sequence[RateLimited]) -> Sent:
        form = {"To": to, "Body": body, "StatusCallback": self.public_url + STATUS_CALLBACK_PATH}
        if self.settings.twilio_messaging_service_sid:
            form["MessagingServiceSid"] = self.settings.twilio_messaging_service_sid
        else:
            form["From"] = str(self.settings.twilio_from)
        client, slots = self._connect()
        async with slots:
            if throttled:  # the provider told this batch to slow down: don't pile on
                first = throttled[0]
                raise RateLimited(f"not sent: {first.reason}", retry_after_s=first.retry_after_s)
            await self._pacer.wait()
            # Twilio has no idempotency key: a retry after a read timeout may send twice,
            # which beats an alert that never arrives.
            with map_transport_errors("twilio"):
                response = await client.post(self._messages_path, data=form)
        return translate_response(response)

    async def check(self) -> str:
        """Pre-flight (``Checkable``): fetch the account (``GET /2010-04-01/Accounts/{sid}.json``); sends nothing."""
        client, _ = self._connect()
        with map_transport_errors("twilio", f"GET {self._account_path}"):
            response = await client.get(self._account_path)
        if not response.is_success:
            translate_response(response)  # raises what Twilio's error answer amounts to
        try:
            account = response.json()
        except ValueError:
            account = None
        status = account.get("status") if isinstance(account, dict) else None
        if status != "active":  # Twilio: "active", "suspended" or "closed"; a closed account sends nothing
            raise PermanentError(f"twilio account {self._account_sid} is {status or 'unreadable'}, not active")
        return f"account {self._account_sid} is active"

    def _connect(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        if self._client is None or self._slots is None:
            concurrency = self.settings.sms_concurrency
            self._client = httpx.AsyncClient(
                base_url=self.settings.twilio_base_url.rstrip("/"),
                auth=(self._account_sid, self._auth_token.get_secret_value()),
                timeout=self.timeout_s,
                limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
                headers={"User-Agent": "broadcaster-sms", "Accept": "application/json"},
                transport=self._transport,
            )
            self._slots = asyncio.Semaphore(concurrency)
        return self._client, self._slots

    async def aclose(self) -> None:
        client, self._client, self._slots = self._client, None, None
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"SmsChannel(account_sid={self._account_sid!r}, base_url={self.settings.twilio_base_url!r})"
