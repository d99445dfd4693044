"""Slack: subscribers' incoming webhooks (channel ``slack``) and the page owner's bot (``slack_bot``).

Both send the same Block Kit message: a header with the status, the translation note as a
context block when the update is not in the reader's language, the update as mrkdwn
(converted from the sanitized HTML, ≤ 3000 characters a section, ≤ 50 blocks), the
affected components and the small print as context blocks, a button to the incident,
and a plain ``text`` fallback for notifications.

- ``slack``: a POST to each subscriber's ``https://hooks.slack.com/services/…`` URL, which
  answers ``ok`` or an error word (``invalid_blocks``, ``no_service`` with 404,
  ``channel_is_archived`` with 410: the subscriber is then disabled).
- ``slack_bot`` (``BROADCASTER_SLACK_BOT_TOKEN``, ``BROADCASTER_SLACK_CHANNEL``): one thread per
  incident in the owner's channel. The first update is ``chat.postMessage``; each later one
  first edits that root message with ``chat.update`` (so the thread always leads with the
  current status; an edit is safe to repeat), then replies in its thread (``thread_ts``).
  Posts are paced to Slack's one message a second per channel; a 429 is retried after its
  ``Retry-After``. Slack answers errors as ``{"ok": false, "error": "…"}``: ``invalid_auth``
  and the like need new credentials, ``channel_not_found`` or ``not_in_channel`` a setting.

Thread state: ``{"channel": channel id, "root_ts": the root message's ts, "posted_at": time of the
last post}`` (so a worker that did not make it still waits out Slack's second).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx
from pydantic import Field, SecretStr

from broadcaster.i18n import N_, gettext, using
from channels._chat import ChatWebhookChannel, Pacer, button_label, cut, footer, headline, webhook_outcome, window
from channels._markup import SLACK, markup, slack_escape
from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    DeliveryError,
    LimitUnit,
    Message,
    Outcome,
    PermanentError,
    Published,
    RateLimited,
    Rendition,
    ReplyTargetGone,
    RetryableError,
    Settings,
    Thread,
    credentials_error,
    http_error,
    request_json,
    require_http_url,
    short_text,
)

HEADER_MAX = 150  # a header block's plain_text
SECTION_MAX = 3000  # a section block's text
CONTEXT_MAX = 3000  # a context element's text
MAX_BLOCKS = 50
FALLBACK_MAX = 300  # the notification text: the short form every channel shares
CUT_NOTE = N_("… the full update is on the status page.")  # in italics, as the last section

CREDENTIAL_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "token_revoked", "token_expired", "account_inactive", "invalid_token"}
    | {"missing_scope"}
)
ROOT_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def sections(text: str, size: int = SECTION_MAX) -> list[str]:
    """``text`` in pieces of at most ``size`` characters, split between paragraphs, then lines, then words."""
    pieces: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if len(candidate) <= size:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(paragraph) > size:
            at = max(paragraph.rfind("\n", 0, size), paragraph.rfind(" ", 0, size))
            at = at if at > 0 else size
            pieces.append(paragraph[:at].rstrip())
            paragraph = paragraph[at:].lstrip()
        current = paragraph
    if current:
        pieces.append(current)
    return pieces


def render_message(message: Message) -> Rendition:
    """The Block Kit message (``text``, ``blocks``) every Slack channel sends for ``message``, in its language."""
    with using(message.language):
        return _render_message(message)


def _render_message(message: Message) -> Rendition:
    def mrkdwn(text: str) -> dict[str, Any]:
        return {"type": "mrkdwn", "text": text}

    header = {"type": "header", "text": {"type": "plain_text", "text": headline(message, HEADER_MAX), "emoji": True}}
    facts = []
    if message.components:
        listed = " · ".join(f"{slack_escape(c.name)}: {c.status_label}" for c in message.components)
        affected = gettext("Affected:")
        facts.append(cut(f"*{affected}* {listed}", CONTEXT_MAX))
    if window(message):
        during = gettext("Window:")
        facts.append(f"*{during}* {window(message)}")
    tail: list[dict[str, Any]] = []
    if facts:
        tail.append({"type": "context", "elements": [mrkdwn(fact) for fact in facts]})
    tail.append({"type": "context", "elements": [mrkdwn(slack_escape(footer(message)))]})
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": button_label(message)},
        "url": message.public_url,
        "action_id": "view_incident",
    }
    tail.append({"type": "actions", "elements": [button]})
    note = []
    if message.translation_note:
        note.append({"type": "context", "elements": [mrkdwn(slack_escape(message.translation_note))]})
    texts = sections(markup(message.body_html, SLACK))
    room = MAX_BLOCKS - 1 - len(note) - len(tail)
    if len(texts) > room:
        rest = gettext(CUT_NOTE)
        texts = [*texts[: room - 1], f"_{rest}_"]
    body = [{"type": "section", "text": mrkdwn(text)} for text in texts]
    return {
        "text": slack_escape(short_text(message, FALLBACK_MAX)),
        "blocks": [header, *note, *body, *tail],
        "unfurl_links": False,
        "unfurl_media": False,
    }


class SlackChannel(ChatWebhookChannel):
    """Block Kit messages to subscribers' Slack incoming webhooks. Always enabled."""

    name: ClassVar[str] = "slack"
    title: ClassVar[str] = "Slack"
    provider: ClassVar[str] = "slack webhook"

    def render(self, message: Message) -> Rendition:
        """The JSON body each subscriber's webhook receives."""
        return render_message(message)

    def outcome(self, response: httpx.Response) -> Outcome:
        return webhook_outcome(response, self.provider, response.text.strip())


class SlackSettings(ChannelSettings):
    """``BROADCASTER_SLACK_BOT_TOKEN`` and ``_CHANNEL`` (both, or neither), ``_BASE_URL``, ``_POST_INTERVAL_S``."""

    title: ClassVar[str] = "Slack bot"
    required: ClassVar[tuple[str, ...]] = ("slack_bot_token", "slack_channel")
    example: ClassVar[Mapping[str, Any]] = {"slack_bot_token": "xoxb-example-token", "slack_channel": "C0EXAMPLE"}

    slack_base_url: str = "https://slack.com/api"
    slack_bot_token: SecretStr | None = None
    slack_channel: str | None = None  # a channel id (C…) or name (#status) the bot is a member of
    slack_post_interval_s: float = Field(1.0, ge=0)  # Slack allows one message a second per channel


class SlackBotChannel:
    """The page owner's Slack channel: one thread per incident, its root edited to the current status."""

    name: ClassVar[str] = "slack_bot"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = False  # the channel may be shared with customers: a drill never goes here
    title: ClassVar[str] = "Slack bot"
    limit: ClassVar[int | None] = None
    limit_unit: ClassVar[LimitUnit | None] = None
    settings_class: ClassVar[type[ChannelSettings]] = SlackSettings

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        base_url: str = "https://slack.com/api",
        post_interval_s: float = 1.0,
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        require_http_url(base_url, "slack base URL")
        self.channel = channel
        self._pacer = Pacer(post_interval_s)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "broadcaster"},
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = SlackSettings.from_core(settings)
        if config is None:
            return None
        assert config.slack_bot_token and config.slack_channel  # required
        return cls(
            config.slack_bot_token.get_secret_value(),
            config.slack_channel,
            base_url=config.slack_base_url,
            post_interval_s=config.slack_post_interval_s,
            timeout_s=settings.http_timeout_s,
            transport=context.http_transport,
        )

    def render(self, message: Message) -> Rendition:
        """The message (root and replies alike); ``publish`` adds the channel and the thread."""
        return render_message(message)

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        channel, root = str(thread.get("channel") or self.channel), thread.get("root_ts")
        last_post = float(thread.get("posted_at") or 0.0)
        if root:
            try:
                await self._call("chat.update", {**rendition, "channel": channel, "ts": root})
            except ReplyTargetGone:
                root = None  # the root was deleted: this update starts a new thread
        if root:
            reply, posted_at = await self._post({**rendition, "channel": channel, "thread_ts": root}, last_post)
            state = {"channel": channel, "root_ts": root, "posted_at": posted_at}
            return Published(provider_id=str(reply["ts"]), thread=state)
        posted, posted_at = await self._post({**rendition, "channel": self.channel}, last_post)
        channel_id, ts = str(posted["channel"]), str(posted["ts"])
        return Published(provider_id=ts, thread={"channel": channel_id, "root_ts": ts, "posted_at": posted_at})

    async def check(self) -> str:
        """Pre-flight (``Checkable``): ``auth.test``; posts nothing."""
        answer = await self._call("auth.test", {})
        return f"auth.test: @{answer.get('user', '?')} in {answer.get('team', '?')}"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, body: Mapping[str, Any], last_post: float) -> tuple[Mapping[str, Any], float]:
        """``chat.postMessage``, paced to one a second in the channel; the answer and when it was sent."""
        posted_at = await self._pacer.wait(last_post)
        answer = await self._call("chat.postMessage", body)
        if not answer.get("ts") or not answer.get("channel"):
            raise RetryableError("slack answered chat.postMessage without a ts")
        return answer, posted_at

    async def _call(self, method: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """One Web API call; Slack's ``ok: false`` answers become delivery errors."""
        answer = await request_json(
            self._client,
            "POST",
            f"/{method}",
            provider="slack",
            base_url=str(self._client.base_url),
            translate=_http_error,
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        if answer.get("ok") is not True:
            raise slack_error(method, str(answer.get("error") or "no error given"))
        return answer


def _http_error(response: httpx.Response, action: str) -> DeliveryError:
    return http_error(response, f"slack answered {response.status_code} to {action}")


def slack_error(method: str, error: str) -> DeliveryError:
    """Slack's ``{"ok": false, "error": error}`` answer to ``method`` as a delivery error."""
    reason = f"slack refused {method}: {error}"
    if error in CREDENTIAL_ERRORS:
        return credentials_error(reason)
    if error == "ratelimited":
        return RateLimited(reason, None)
    if error in TRANSIENT:
        return RetryableError(reason)
    if method == "chat.update" and error in ROOT_GONE:
        return ReplyTargetGone(reason)
    return PermanentError(reason)  # channel_not_found, not_in_channel, is_archived, invalid_blocks, …
