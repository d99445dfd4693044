"""Outgoing webhooks: a JSON POST per subscriber, signed per the Standard Webhooks spec.

Headers: ``webhook-id`` (stable per update and subscriber, so receivers dedupe retries),
``webhook-timestamp`` (seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of
``id.timestamp.body`` keyed with the subscriber's ``whsec_`` secret, base64-decoded).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import httpx
from pydantic import Field

from broadcaster.render import iso
from broadcaster.ssrf import PinnedTransport, is_public_ip
from channels._chat import post_each
from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    DeliveryError,
    LimitUnit,
    Message,
    Outcome,
    PermanentError,
    Recipient,
    Rendition,
    RetryableError,
    Sent,
    Settings,
    Thread,
    http_error,
    map_transport_errors,
)

USER_AGENT = "broadcaster-webhooks/1"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def classify(response: httpx.Response) -> Outcome:
    """2xx sent; 408/429/5xx retry; any other 4xx is permanent."""
    status = response.status_code
    if 200 <= status < 300:
        return Sent(provider_id=str(status))
    reason = f"HTTP {status} from receiver"
    common = http_error(response, reason)
    if isinstance(common, RetryableError):
        return common
    return PermanentError(f"{reason}: {response.text[:200]}")  # 401/403 included: not our credentials


class WebhookSettings(ChannelSettings):
    """``BROADCASTER_WEBHOOK_TIMEOUT_S``. Whether receivers may be private addresses
    (``BROADCASTER_WEBHOOK_ALLOW_PRIVATE``) is a core setting: sign-up checks it too."""

    title: ClassVar[str] = "Webhooks"
    example: ClassVar[Mapping[str, Any]] = {"webhook_timeout_s": 5.0}

    webhook_timeout_s: float = Field(10.0, gt=0)


class WebhookChannel:
    """Signed JSON POSTs to subscribers' URLs. Always enabled."""

    name: ClassVar[str] = "webhook"
    kind: ClassVar[ChannelKind] = ChannelKind.SUBSCRIBER
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = True  # a drill reaches the drill audience only
    title: ClassVar[str] = "Webhooks"
    limit: ClassVar[int | None] = None
    limit_unit: ClassVar[LimitUnit | None] = None
    settings_class: ClassVar[type[ChannelSettings]] = WebhookSettings

    def __init__(
        self,
        timeout_s: float = 10.0,
        concurrency: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
        allow_private: bool = False,
    ) -> None:
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._concurrency = concurrency
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = WebhookSettings.from_core(settings)
        assert config is not None  # nothing required: always enabled
        return cls(
            timeout_s=config.webhook_timeout_s,
            allow_private=settings.webhook_allow_private,
            transport=context.http_transport,
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Each receiver's host is looked up once, vetted and pinned where the connection is made
            # (broadcaster.ssrf); a transport lent through the context (tests) replaces that.
            transport = self._transport or PinnedTransport(
                allow_private=self._allow_private, limits=httpx.Limits(max_connections=self._concurrency)
            )
            self._client = httpx.AsyncClient(
                timeout=self._timeout_s, transport=transport, follow_redirects=False, headers={"user-agent": USER_AGENT}
            )
        return self._client

    def render(self, message: Message) -> Rendition:
        """The JSON payload every webhook subscriber receives."""
        return {
            "type": "incident.update",
            "timestamp": iso(message.created_at),
            "data": {
                "page": {"name": message.page_name, "url": message.page_url},
                "incident": {
                    "id": message.incident_id,
                    "name": message.incident_title,
                    "kind": message.kind,
                    "impact": message.impact,
                    "url": message.public_url,
                    "drill": message.drill,
                },
                "update": {
                    "id": message.update_id,
                    "number": message.update_number,
                    "status": message.status,
                    "body": message.body_text,
                    "body_html": message.body_html,
                    "created_at": iso(message.created_at),
                    "next_update_at": iso(message.next_update_at),
                },
                "components": [
                    {"id": c.id, "name": c.name, "old_status": c.old_status, "new_status": c.new_status}
                    for c in message.components
                ],
            },
        }

    async def deliver(
        self, message: Message, rendition: Rendition, recipients: Sequence[Recipient], thread: Thread
    ) -> Mapping[int, Outcome]:
        body = json.dumps(rendition, separators=(",", ":")).encode()
        return await post_each(
            recipients, self._sending_slots(), lambda recipient: self._post(message, recipient, body)
        )

    def _sending_slots(self) -> asyncio.Semaphore:
        """``concurrency`` requests at once for the whole worker, every batch together (as the pool is)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        return self._slots

    async def _post(self, message: Message, recipient: Recipient, body: bytes) -> Outcome:
        if not recipient.secret:
            return PermanentError("subscriber has no signing secret")
        msg_id = f"msg_{message.update_id}_{recipient.subscriber_id}"
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(recipient.secret, msg_id, timestamp, body),
        }
        try:
            # The URL stays out of the reason: a receiver's URL often carries its own secret.
            with map_transport_errors("webhook receiver"):
                response = await self._http().post(recipient.address, content=body, headers=headers)
        except DeliveryError as exc:  # RetryableError, or the pinned transport's refusal (permanent)
            return exc
        return classify(response)

    async def aclose(self) -> None:
        self._slots = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None


__all__ = ["DeliveryError", "WebhookChannel", "classify", "is_public_ip", "sign"]
