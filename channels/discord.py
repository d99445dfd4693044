"""Discord: an embed to each subscriber's webhook (``discord``) and to the page owner's forum (``discord_forum``).

The embed: the headline as its title (≤ 256) linking to the incident, the update as
Discord markdown in its description (≤ 4096; the translation note in italics first when the
update is not in the reader's language), one field per affected component (≤ 25),
the small print as its footer, coloured by impact (green once closed); all of it within
Discord's 6000-character total. ``allowed_mentions`` is empty, so no update ever pings
``@everyone``. Every POST carries ``?wait=true``, so Discord answers the message it made
(its id becomes the provider id) rather than 204.

A 429 answers JSON ``{"retry_after": seconds, "global": …}``: that wait is honoured. A 404
(``Unknown Webhook``) disables a subscriber.

``discord_forum`` (``BROADCASTER_DISCORD_FORUM_WEBHOOK_URL``, a forum channel's webhook) keeps
one forum post per incident: the first update creates it with ``thread_name``, the rest go
into it with ``?thread_id=``; when that thread is gone, the update starts a new one.
Thread state: ``{"thread_id": the forum post's channel id}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx
from pydantic import SecretStr

from broadcaster.i18n import gettext, using
from broadcaster.render import iso
from channels._chat import ChatWebhookChannel, colour, cut, footer, headline, read_json, webhook_outcome, window
from channels._markup import DISCORD, markup
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
    Rendition,
    ReplyTargetGone,
    Sent,
    Settings,
    Thread,
    credentials_error,
    map_transport_errors,
    require_http_url,
)

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000  # title, description, field names and values, footer and author together
THREAD_NAME_MAX = 100
UNKNOWN_CHANNEL = 10003  # the thread was deleted


def embed_size(embed: Mapping[str, Any]) -> int:
    """The characters Discord counts against an embed's 6000."""
    fields = embed.get("fields") or []
    parts = [
        embed.get("title", ""),
        embed.get("description", ""),
        (embed.get("footer") or {}).get("text", ""),
        (embed.get("author") or {}).get("name", ""),
        *(field["name"] + field["value"] for field in fields),
    ]
    return sum(len(part) for part in parts)


def render_embed(message: Message) -> dict[str, Any]:
    """The embed for ``message`` in its language, within every Discord limit."""
    with using(message.language):
        return _render_embed(message)


def _render_embed(message: Message) -> dict[str, Any]:
    fields = [
        {"name": cut(c.name, FIELD_NAME_MAX), "value": c.status_label, "inline": True} for c in message.components
    ]
    if window(message):
        fields.append({"name": gettext("Window"), "value": window(message), "inline": False})
    if len(fields) > FIELDS_MAX:
        rest = ", ".join(f"{f['name']}: {f['value']}" for f in fields[FIELDS_MAX - 1 :])
        more = {"name": gettext("And"), "value": cut(rest, FIELD_VALUE_MAX), "inline": False}
        fields = [*fields[: FIELDS_MAX - 1], more]
    embed: dict[str, Any] = {
        "title": headline(message, TITLE_MAX),
        "url": message.public_url,
        "description": "",
        "color": colour(message),
        "fields": fields,
        "footer": {"text": cut(footer(message), FOOTER_MAX)},
        "timestamp": iso(message.created_at),
    }
    note = f"*{DISCORD.escape(message.translation_note)}*\n\n" if message.translation_note else ""
    room = min(DESCRIPTION_MAX, EMBED_TOTAL_MAX - embed_size(embed)) - len(note)
    embed["description"] = note + cut(markup(message.body_html, DISCORD), room)
    return embed


def translate(response: httpx.Response) -> tuple[str, float | None, int | None]:
    """(Discord's words, its ``retry_after`` in seconds, its error code) from an answer."""
    body = read_json(response)
    if not isinstance(body, dict):
        return response.text.strip(), None, None
    retry_after = body.get("retry_after")
    code = body.get("code")
    detail = str(body.get("message") or "")
    if isinstance(code, int):
        detail = f"{detail} (code {code})"
    wait_s = float(retry_after) if isinstance(retry_after, int | float) else None
    return detail, wait_s, code if isinstance(code, int) else None


def _message_id(response: httpx.Response) -> str | None:
    body = read_json(response)
    return str(body["id"]) if isinstance(body, dict) and body.get("id") else None


class DiscordChannel(ChatWebhookChannel):
    """Embeds to subscribers' Discord webhooks. Always enabled."""

    name: ClassVar[str] = "discord"
    title: ClassVar[str] = "Discord"
    provider: ClassVar[str] = "discord webhook"
    params: ClassVar[Mapping[str, str]] = {"wait": "true"}

    def render(self, message: Message) -> Rendition:
        """The JSON body each subscriber's webhook receives."""
        return {"embeds": [render_embed(message)], "allowed_mentions": {"parse": []}}

    def outcome(self, response: httpx.Response) -> Outcome:
        if response.is_success:
            return Sent(provider_id=_message_id(response) or str(response.status_code))
        detail, wait_s, _ = translate(response)
        return webhook_outcome(response, self.provider, detail, retry_after_s=wait_s)


class DiscordForumSettings(ChannelSettings):
    """``BROADCASTER_DISCORD_FORUM_WEBHOOK_URL``: a webhook of the page owner's forum channel."""

    title: ClassVar[str] = "Discord forum"
    required: ClassVar[tuple[str, ...]] = ("discord_forum_webhook_url",)
    example: ClassVar[Mapping[str, Any]] = {
        "discord_forum_webhook_url": "https://discord.example.test/api/webhooks/1/example-token"
    }

    discord_forum_webhook_url: SecretStr | None = None


class DiscordForumChannel:
    """The page owner's Discord forum: one post per incident, each update a message in it."""

    name: ClassVar[str] = "discord_forum"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = False  # a forum others read: a drill never goes here
    title: ClassVar[str] = "Discord forum"
    limit: ClassVar[int | None] = None
    limit_unit: ClassVar[LimitUnit | None] = None
    settings_class: ClassVar[type[ChannelSettings]] = DiscordForumSettings

    def __init__(
        self, webhook_url: str, *, timeout_s: float = 15.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        require_http_url(webhook_url, "discord forum webhook URL")
        self._url = webhook_url
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport, headers={"User-Agent": "broadcaster"})

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = DiscordForumSettings.from_core(settings)
        if config is None:
            return None
        assert config.discord_forum_webhook_url  # required
        url = config.discord_forum_webhook_url.get_secret_value()
        return cls(url, timeout_s=settings.http_timeout_s, transport=context.http_transport)

    def render(self, message: Message) -> Rendition:
        """The body; ``thread_name`` names the forum post and is sent only when the update starts one."""
        return {
            "embeds": [render_embed(message)],
            "allowed_mentions": {"parse": []},
            "thread_name": cut(message.incident_title, THREAD_NAME_MAX),
        }

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        thread_id = thread.get("thread_id")
        body = {key: value for key, value in rendition.items() if key != "thread_name"}
        if thread_id:
            try:
                posted = await self._send(body, str(thread_id))
                return Published(provider_id=posted["id"], thread={"thread_id": str(thread_id)})
            except ReplyTargetGone:
                pass  # the forum post was deleted: start another
        posted = await self._send({**body, "thread_name": rendition["thread_name"]}, None)
        return Published(provider_id=posted["id"], thread={"thread_id": str(posted["channel_id"])})

    async def check(self) -> str:
        """Pre-flight (``Checkable``): ``GET`` the webhook (Discord answers what it is); posts nothing."""
        with map_transport_errors("discord forum"):
            response = await self._client.get(self._url)
        hook = read_json(response)
        if not response.is_success or not isinstance(hook, dict):
            raise self._error(response, replying=False)
        return f"webhook {hook.get('name', '?')!r} of channel {hook.get('channel_id', '?')}"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, body: Mapping[str, Any], thread_id: str | None) -> dict[str, str]:
        params = {"wait": "true", **({"thread_id": thread_id} if thread_id else {})}
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        target = httpx.URL(self._url).copy_merge_params(params)  # params= would drop the URL's own query
        with map_transport_errors("discord forum"):  # the URL holds the webhook's token: never in a reason
            response = await self._client.post(target, content=content, headers={"content-type": "application/json"})
        if response.is_success:
            posted = read_json(response)
            if isinstance(posted, dict) and posted.get("id") and posted.get("channel_id"):
                return {"id": str(posted["id"]), "channel_id": str(posted["channel_id"])}
        raise self._error(response, replying=thread_id is not None)

    def _error(self, response: httpx.Response, *, replying: bool) -> DeliveryError:
        provider = "discord forum webhook"
        detail, wait_s, code = translate(response)
        status = response.status_code
        if replying and code == UNKNOWN_CHANNEL:
            return ReplyTargetGone(f"{provider}: the incident's forum post is gone ({detail})")
        if status in (401, 403, 404):  # our own webhook: the setting needs a new URL
            return credentials_error(f"{provider} answered {status}: {detail[:200] or response.reason_phrase}")
        outcome = webhook_outcome(response, provider, detail, retry_after_s=wait_s)
        if isinstance(outcome, Sent):  # a 2xx without the message: Discord did not say what it made
            return PermanentError(f"{provider} answered {status} without the message it posted")
        return outcome
