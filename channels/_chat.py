"""What the chat channels (Slack, Microsoft Teams, Discord, Google Chat) share; not a channel.

- the facts every card shows, in words from ``templates/chat/``: ``headline``, ``footer``,
  ``button_label``, ``window``, and ``colour`` by impact (green once closed);
- ``ChatWebhookChannel``, the subscriber side of every chat: the rendition, as JSON, POSTed
  to each subscriber's webhook URL. The URL is the subscriber's secret and a URL someone
  else chose, so it goes through ``broadcaster.ssrf.PinnedTransport`` (the webhook policy)
  and never into a reason or a log line. ``webhook_outcome`` is the common reading of the
  answer: a 404 or 410 means the webhook is gone, and the subscriber is suppressed with
  the reason, never tried again;
- ``post_each``: one POST per recipient, ``concurrency`` at once, each outcome reported before
  its slot frees (the webhook channel's fan-out too);
- ``Pacer``: at most one post per interval (Slack's one message a second per channel).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Self
from urllib.parse import urlencode

import httpx

from broadcaster.delivery.progress import current_progress
from broadcaster.message import cut_at_word, one_line
from broadcaster.ssrf import PinnedTransport
from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    DeliveryError,
    LimitUnit,
    Message,
    Outcome,
    PermanentError,
    RateLimited,
    Recipient,
    Rendition,
    RetryableError,
    Sent,
    Settings,
    Thread,
    map_transport_errors,
    rate_limit_reset_seconds,
    render_template,
)

CONCURRENCY = 32  # requests in flight per worker, every batch together (as the webhook channel)
GONE = (404, 410)  # the webhook was deleted, or its channel archived: stop sending there
USER_AGENT = "broadcaster-chat/1"

IMPACT_COLOURS = {  # 0xRRGGBB, as Discord's embed colour; Teams names its own from these
    "none": 0x6B7280,
    "minor": 0xD97706,
    "major": 0xEA580C,
    "critical": 0xDC2626,
    "maintenance": 0x2563EB,
}
CLOSED_COLOUR = 0x16A34A


def headline(message: Message, limit: int) -> str:
    """``Investigating: Checkout API errors`` (``DRILL · `` first on a drill), within ``limit`` characters."""
    return cut(one_line(render_template("chat/headline.txt", message=message)), limit)


def footer(message: Message) -> str:
    """``Service Status · update 2 · 2026-05-01 10:00 UTC · next update by …``: plain text."""
    return one_line(render_template("chat/footer.txt", message=message))


def button_label(message: Message) -> str:
    return one_line(render_template("chat/button.txt", message=message))


def window(message: Message) -> str:
    """A maintenance's scheduled window, or ``""``."""
    return one_line(render_template("chat/window.txt", message=message))


def colour(message: Message) -> int:
    """The incident's colour: by impact while open, green once resolved or completed."""
    return CLOSED_COLOUR if message.is_closing else IMPACT_COLOURS.get(message.impact, IMPACT_COLOURS["none"])


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word with an ellipsis."""
    if len(text) <= limit:
        return text
    # Only the last word of the first ``limit`` characters can go: cut_at_word need not see the rest.
    return cut_at_word(text[: limit + 1], limit, len) or text[: max(0, limit - 1)] + "…"


def webhook_outcome(
    response: httpx.Response,
    provider: str,
    detail: str,
    *,
    provider_id: str | None = None,
    retry_after_s: float | None = None,
) -> Outcome:
    """The common reading of a chat webhook's answer; ``detail`` is the provider's own words.

    | status      | outcome                                                          |
    |-------------|------------------------------------------------------------------|
    | 2xx         | ``Sent(provider_id)``                                            |
    | 404, 410    | ``PermanentError``, the subscriber suppressed: the webhook is gone |
    | 429         | ``RateLimited``, after ``retry_after_s`` or ``Retry-After``       |
    | 408, 5xx    | ``RetryableError``                                               |
    | any other   | ``PermanentError`` (401/403 too: not our credentials)            |
    """
    status = response.status_code
    if response.is_success:
        return Sent(provider_id=provider_id or str(status))
    reason = f"{provider} answered {status}: {detail[:200] or response.reason_phrase}"
    wait_s = retry_after_s if retry_after_s is not None else rate_limit_reset_seconds(response.headers)
    if status == 429:
        return RateLimited(reason, wait_s)
    if status >= 500 or status == 408:
        return RetryableError(reason, wait_s)
    if status in GONE:
        return PermanentError(f"{reason} (the webhook is gone: subscriber disabled)", suppress_recipient=True)
    return PermanentError(reason)


async def post_each(
    recipients: Sequence[Recipient], slots: asyncio.Semaphore, post: Callable[[Recipient], Awaitable[Outcome]]
) -> dict[int, Outcome]:
    """``post`` to each recipient, as many at once as ``slots`` allow, each outcome reported as it comes.

    Once the worker is stopping, the recipients not yet begun are handed back unsent (no outcome).
    """
    progress = current_progress()
    outcomes: dict[int, Outcome] = {}

    async def send(recipient: Recipient) -> None:
        async with slots:
            if progress.stopping:
                return
            outcome = outcomes[recipient.delivery_id] = await post(recipient)
            # In the ledger before the slot frees: a crash re-sends at most ``concurrency`` per worker.
            await progress.report(recipient.delivery_id, outcome)

    await asyncio.gather(*(send(recipient) for recipient in recipients))
    return outcomes


def read_json(response: httpx.Response) -> Any:
    """The answer's JSON, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


class ChatWebhookChannel:
    """The subscriber side of a chat service: ``render`` once, POST to each subscriber's URL.

    A concrete channel names itself (``name``, ``title``, ``provider``), renders the body, and
    reads its service's answer (``outcome``); ``params`` adds query parameters to the URL.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    provider: ClassVar[str]
    """How reasons name the service: "slack webhook"."""
    kind: ClassVar[ChannelKind] = ChannelKind.SUBSCRIBER
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = True  # a drill reaches the drill audience only
    limit: ClassVar[int | None] = None
    limit_unit: ClassVar[LimitUnit | None] = None
    settings_class: ClassVar[type[ChannelSettings]] = ChannelSettings  # the subscriber's URL is the configuration
    params: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout_s: float = 10.0,
        concurrency: int = CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._concurrency = concurrency
        self._query = urlencode(self.params)
        self._slots: asyncio.Semaphore | None = None
        # Each host is looked up once, vetted and pinned where the connection is made (broadcaster.ssrf);
        # a transport lent through the context (tests) replaces that.
        pinned = transport or PinnedTransport(
            allow_private=allow_private, limits=httpx.Limits(max_connections=concurrency)
        )
        self._client = httpx.AsyncClient(
            transport=pinned, timeout=timeout_s, headers={"user-agent": USER_AGENT}, follow_redirects=False
        )

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """Always enabled: BROADCASTER_WEBHOOK_ALLOW_PRIVATE and BROADCASTER_HTTP_TIMEOUT_S apply."""
        return cls(
            allow_private=settings.webhook_allow_private,
            timeout_s=settings.http_timeout_s,
            transport=context.http_transport,
        )

    def render(self, message: Message) -> Rendition:
        raise NotImplementedError

    def outcome(self, response: httpx.Response) -> Outcome:
        """What the service's answer means for this recipient."""
        raise NotImplementedError

    async def deliver(
        self, message: Message, rendition: Rendition, recipients: Sequence[Recipient], thread: Thread
    ) -> Mapping[int, Outcome]:
        body = json.dumps(rendition, separators=(",", ":"), ensure_ascii=False).encode()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        return await post_each(recipients, self._slots, lambda recipient: self.post(recipient.address, body))

    async def post(self, url: str, body: bytes) -> Outcome:
        """POST ``body`` to one subscriber's webhook ``url``; the outcome, never an exception."""
        if not url.startswith(("https://", "http://")):
            return PermanentError(f"{self.provider}: the subscriber's address is not an http(s) URL")
        headers = {"content-type": "application/json; charset=utf-8"}
        try:
            # The URL stays out of the reason: a chat webhook's URL is its secret.
            # The URL's own query (Google's key and token, a workflow's sig) stays: httpx's params= would drop it.
            target = f"{url}{'&' if '?' in url else '?'}{self._query}" if self._query else url
            with map_transport_errors(self.provider):
                response = await self._client.post(target, content=body, headers=headers)
        except DeliveryError as exc:  # RetryableError, or the pinned transport's refusal (permanent)
            return exc
        except (httpx.InvalidURL, ValueError):
            return PermanentError(f"{self.provider}: the subscriber's URL is not a valid URL")
        return self.outcome(response)

    async def aclose(self) -> None:
        self._slots = None
        await self._client.aclose()


class Pacer:
    """At most one start per ``interval_s``: in this process, and after a start the caller knows of.

    A start another worker made is known from what it stored (the Slack bot's thread keeps the
    time of its last post); a 429 covers the rest. Times are ``time.time()``, and no wait is
    longer than ``interval_s``, whatever the clocks say.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def wait(self, last_start: float | None = None) -> float:
        """Return when the next start is allowed (and count it): the time it may start."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.time()
            due = max(self._next, last_start + self.interval_s if last_start else 0.0)
            if due > now:
                await asyncio.sleep(min(due - now, self.interval_s))
                now = time.time()
            self._next = now + self.interval_s
            return now
