"""The one channel contract. Channels implement it; the fan-out only ever talks to it.

A channel declares its facts as class attributes (``Channel``: its name, kind, title,
length limit and how it counts, whether it notifies people, whether drills go there, and
its ``settings_class``), builds itself from ``Settings`` with ``from_settings`` (``None``
when its settings are absent: the channel is then disabled; ``ConfigError`` naming the
missing variables when they are half given), has a pure ``render(message)`` that returns
the exact rendition shown in previews, and an async send:

- a **broadcast** channel (status page, social, knowledge base) ``publish``es once per update;
- a **subscriber** channel (email, SMS, webhook) ``deliver``s to a batch of recipients,
  reusing one connection for the batch, and reports an outcome per recipient.

Both get the incident's ``thread`` (what the channel stored on earlier updates of the same
incident, such as a social post id) and may return a new one to store. A channel that can
also reach one person at once (email, SMS) is a ``DirectSender`` too: opt-in confirmations,
contact notices and reminders go through ``send_direct`` (``broadcaster.delivery.direct``
records each in the ledger). A channel whose account can be verified without posting
anything public is ``Checkable`` too: its ``check`` is the pre-flight
(``broadcaster.delivery.preflight``, ``broadcaster channels check``). A social channel that can
read what people answer to its posts is ``Listening`` too: its ``replies(thread)`` feeds the
listening cron (``broadcaster.jobs.listening``). Channels never touch the database, Starlette, or
each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import httpx

from broadcaster.config import ChannelSettings, Settings
from broadcaster.delivery.credentials import CredentialStore, LocalCredentials
from broadcaster.errors import DeliveryError
from broadcaster.message import Message
from broadcaster.models import ChannelKind, LimitUnit, ReplyKind

Rendition = dict[str, Any]
"""A channel's exact rendition of a message: JSON-able, shown verbatim by the preview."""

Thread = Mapping[str, Any]
"""Per incident and channel state a channel keeps between updates (post ids, article ids)."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """One subscriber as a subscriber channel sees it, with its personal links."""

    delivery_id: int
    subscriber_id: str
    address: str
    unsubscribe_url: str = ""
    manage_url: str = ""
    secret: str | None = None  # webhook signing secret


@dataclass(frozen=True, slots=True)
class Sent:
    """A recipient's message was accepted by the provider."""

    provider_id: str | None = None


Outcome = Sent | DeliveryError


@dataclass(frozen=True, slots=True)
class Published:
    """A broadcast channel's publication; ``thread`` (if not None) replaces the stored one."""

    provider_id: str | None = None
    url: str | None = None
    thread: Mapping[str, Any] | None = None


@dataclass(slots=True)
class ChannelContext:
    """What the core lends a channel: the live-event bus, an HTTP transport, a credential store, extras.

    ``http_transport`` (``None``: httpx's own) goes to every HTTP client a channel makes in
    ``from_settings``: tests pass an ``httpx.MockTransport`` there. ``credentials`` keeps the
    tokens a provider rotates (``broadcaster.delivery.credentials``): a ``Runtime`` lends the
    store every worker shares, the default is this process's memory.
    """

    publish_event: Callable[[str, Mapping[str, Any]], Awaitable[None]] | None = None
    http_transport: httpx.AsyncBaseTransport | None = None
    credentials: CredentialStore = field(default_factory=LocalCredentials)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DirectMessage:
    """A one-off message to one person: an opt-in confirmation, a contact notice, a reminder.

    A mail channel sends ``subject``, ``text`` and ``html`` (default: ``text`` as a paragraph);
    a text channel sends ``short`` (default: ``"subject: text"``, or ``text`` alone).
    """

    subject: str
    text: str
    html: str = ""
    short: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def sms_text(self) -> str:
        """What a text message carries."""
        return self.short or (f"{self.subject}: {self.text}" if self.subject else self.text)


@runtime_checkable
class Channel(Protocol):
    """Facts and rendering every channel has."""

    name: ClassVar[str]
    """Unique; the key in ``channels`` lists, the ledger and the API."""
    kind: ClassVar[ChannelKind]
    title: ClassVar[str]
    """For people: "Email", "Zendesk Guide"."""
    limit: ClassVar[int | None]
    """How long the rendition's main text (a post, an SMS, an article title) may be; ``None``: unbounded.

    For SMS it is the default, ``BROADCASTER_SMS_MAX_SEGMENTS`` sets it per deployment."""
    limit_unit: ClassVar[LimitUnit | None]
    """How ``limit`` counts; ``None`` exactly when ``limit`` is."""
    notifies: ClassVar[bool]
    """A message people receive (email, SMS, webhook, social): held back when ``deliver_notifications`` is false."""
    publishes_drills: ClassVar[bool]
    """Whether a drill goes here: the drill audience of a subscriber channel, or a surface kept off the public."""
    settings_class: ClassVar[type[ChannelSettings]]
    """The channel's own settings (``ChannelSettings`` itself for a channel that needs none)."""

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """Build from settings; ``None`` when not configured; ``ConfigError`` when half configured."""
        ...

    def render(self, message: Message) -> Rendition:
        """The exact rendition of ``message`` for this channel. Pure: no I/O."""
        ...

    async def aclose(self) -> None:
        """Release connections and pools."""
        ...


@runtime_checkable
class BroadcastChannel(Channel, Protocol):
    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        """Publish once. Raise ``RetryableError`` / ``PermanentError`` on failure."""
        ...


@runtime_checkable
class SubscriberChannel(Channel, Protocol):
    async def deliver(
        self, message: Message, rendition: Rendition, recipients: Sequence[Recipient], thread: Thread
    ) -> Mapping[int, Outcome]:
        """Send to each recipient; return an outcome per ``delivery_id``.

        A recipient missing from the result is retried. Raise ``RetryableError`` when the
        whole batch failed (connection refused) and nothing was sent. Report each outcome as
        it happens and stop starting sends when told (``broadcaster.delivery.progress``):
        a crash then re-sends only what was on the wire.
        """
        ...


@runtime_checkable
class DirectSender(Protocol):
    """A channel that also sends one-off messages to one address, outside any update's fan-out."""

    name: ClassVar[str]

    async def send_direct(self, to: str, message: DirectMessage) -> Sent:
        """Send ``message`` to ``to`` now. Raise ``RetryableError`` / ``PermanentError`` on failure."""
        ...


@runtime_checkable
class Checkable(Protocol):
    """A channel with a pre-flight check. Optional: a channel without one is "skipped"
    (a webhook or chat channel's endpoints belong to its subscribers, not to us)."""

    async def check(self) -> str:
        """Verify the channel's account and configuration without posting anything public.

        Returns a short description of what was verified (``"EHLO/AUTH ok at smtp.example.org:587"``,
        ``"section 360001 exists"``); raises ``DeliveryError`` with the provider's reason on failure.
        """
        ...


@dataclass(frozen=True, slots=True)
class Reply:
    """Something a person posted in answer to one of our posts, as the provider shows it."""

    provider_id: str  # unique per channel: a status id, an at:// URI
    author: str  # @handle
    text: str  # plain text
    posted_at: datetime
    url: str | None = None
    kind: ReplyKind = ReplyKind.REPLY


@runtime_checkable
class Listening(Protocol):
    """A channel that can read the replies to its posts. Optional: the listening cron skips the others."""

    async def replies(self, thread: Thread) -> Sequence[Reply]:
        """Replies and mentions to the posts of ``thread`` (what ``publish`` stored), by other accounts.

        Raise ``RateLimited`` when the provider asks to wait, ``DeliveryError`` with its reason otherwise.
        """
        ...


@runtime_checkable
class PageCopy(Protocol):
    """A broadcast channel that keeps a copy of the whole public page elsewhere (the mirror).

    Its ``publish`` pushes the page as it is now; ``refresh`` does the same outside any update,
    after a change that posts none (a quiet component change, the brand, the contact channels:
    ``broadcaster.jobs.page_copies``) and for ``broadcaster mirror push`` (``full``: every object
    again, not only what changed).
    """

    async def refresh(self, *, full: bool = False) -> str:
        """Push the page now; what was done. Raise ``RetryableError`` / ``PermanentError`` on failure."""
        ...

    async def copy_state(self) -> Mapping[str, Any]:
        """How the pushes went (the last success, the lag), JSON-able: ``GET /api/v1/channels`` shows it."""
        ...
