"""Email over SMTP: one rendition per update, turned into bytes once, sent to many.

Enabled by ``BROADCASTER_SMTP_HOST`` + ``BROADCASTER_EMAIL_FROM`` (``_SMTP_PORT``,
``_USERNAME``/``_PASSWORD`` and ``_STARTTLS`` as the relay needs). ``render`` is the exact
mail the preview shows; what differs per subscriber appears in it as placeholders::

    >>> EmailChannel(settings).render(message)["headers"]["To"]
    '{{address}}'

Building an ``EmailMessage`` per recipient costs several times the sending itself (see
``performance.md``), so ``deliver`` compiles the rendition once (``channels/_mime.py``: a
multipart/alternative message as bytes, cut at the placeholders, already dot-stuffed for
DATA) and per recipient only joins those pieces with the recipient's few encoded values;
``transmit`` (``channels/_smtp.py``) hands them to aiosmtplib's ``execute_command`` instead
of ``sendmail``, which would re-parse the addresses and scan the whole mail twice. Each batch
goes through one SMTP session; ``smtp_max_connections`` bounds the sessions open at once.

Every mail of an incident threads in mail clients: the first update's ``Message-ID`` is the
thread root ``<i.{incident}.{subscriber}@{domain}>``, later ones are
``<u.{update}.{subscriber}@{domain}>`` with ``In-Reply-To`` and ``References`` naming the
root. The ids are stable, so a retried mail is recognisably the same mail.
"""

from __future__ import annotations

import asyncio
import html
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, ClassVar, Self, TypedDict

import aiosmtplib
from pydantic import Field, SecretStr, model_validator

from broadcaster import i18n
from broadcaster.delivery.progress import current_progress
from broadcaster.render import environment
from channels._mime import PLACEHOLDERS, CompiledMail, atom, printable, safe_url, smtp_address, smtp_data
from channels._pipelining import Mail
from channels._smtp import SMTP_ERRORS, deliver_error, quit_session, send_each, transmit, verify_session
from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    ConfigError,
    DirectMessage,
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
    as_utc,
)


class TransactionalMail(TypedDict):
    """A one-off mail as ``send_one`` keywords."""

    subject: str
    text: str
    html: str


class EmailSettings(ChannelSettings):
    """``BROADCASTER_SMTP_HOST`` and ``BROADCASTER_EMAIL_FROM`` (both, or neither); the relay's
    ``_SMTP_PORT``, ``_SMTP_USERNAME`` / ``_SMTP_PASSWORD`` (both, or neither), ``_SMTP_STARTTLS``,
    ``_SMTP_TIMEOUT_S`` and ``_SMTP_MAX_CONNECTIONS`` (sessions open at once)."""

    title: ClassVar[str] = "Email"
    required: ClassVar[tuple[str, ...]] = ("smtp_host", "email_from")
    # Port 1 on loopback: nothing listens there, so a contract test's send fails at once.
    example: ClassVar[Mapping[str, Any]] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": 1,
        "email_from": "status@example.test",
    }

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(30.0, gt=0)
    smtp_max_connections: int = Field(8, ge=1)
    email_from: str | None = None

    @model_validator(mode="after")
    def _login_is_a_pair(self) -> Self:
        if bool(self.smtp_username) != (self.smtp_password is not None):
            raise ValueError("set both BROADCASTER_SMTP_USERNAME and BROADCASTER_SMTP_PASSWORD, or neither")
        return self


class EmailChannel:
    """Email to subscribers through one SMTP relay; also sends one-off mails (``DirectSender``).

    Built from the core ``settings`` (page name and id, public URL, templates) and ``config``,
    the channel's own (read from ``settings`` when not given).
    """

    name: ClassVar[str] = "email"
    kind: ClassVar[ChannelKind] = ChannelKind.SUBSCRIBER
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = True  # a drill reaches the drill audience only
    title: ClassVar[str] = "Email"
    limit: ClassVar[int | None] = None
    limit_unit: ClassVar[LimitUnit | None] = None
    settings_class: ClassVar[type[ChannelSettings]] = EmailSettings
    compiled_cache_size: ClassVar[int] = 32

    def __init__(self, settings: Settings, config: EmailSettings | None = None) -> None:
        config = config if config is not None else EmailSettings.from_core(settings)
        if config is None:
            raise ConfigError("email needs both BROADCASTER_SMTP_HOST and BROADCASTER_EMAIL_FROM")
        assert config.email_from  # required
        display_name, address = parseaddr(config.email_from)
        try:
            self.from_address = smtp_address(address)
        except PermanentError:
            raise ConfigError(f"BROADCASTER_EMAIL_FROM is not an address: {config.email_from!r}") from None
        self.settings = settings
        self.smtp = config
        self.domain = self.from_address.rpartition("@")[2].lower()
        self.from_name = display_name or settings.page_name
        local, _, domain = self.from_address.rpartition("@")
        self.from_header = str(Address(printable(self.from_name), local, domain))  # quoted as needed
        self._mail_from = b"FROM:<" + self.from_address.encode("ascii") + b">"
        self._templates = environment(settings.templates_dir)
        # A semaphore belongs to one event loop; tests and CLI commands may bring several.
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._compiled: OrderedDict[tuple[Any, ...], CompiledMail] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = EmailSettings.from_core(settings)
        return None if config is None else cls(settings, config)

    # rendering -----------------------------------------------------------------------------

    def render(self, message: Message) -> Rendition:
        """Subject, text and HTML parts, and headers, with ``{{placeholders}}`` per recipient; in
        ``message.language``, which ``Content-Language`` names."""
        with i18n.using(message.language):
            return self._render(message)

    def _render(self, message: Message) -> Rendition:
        placeholders = {name: f"{{{{{name}}}}}" for name in PLACEHOLDERS}
        context = {
            "message": message,
            "subject": message.subject,
            "unsubscribe_url": placeholders["unsubscribe_url"],
            "manage_url": placeholders["manage_url"],
            "created_at": as_utc(message.created_at),
            "next_update_at": message.next_update_at and as_utc(message.next_update_at),
            "scheduled_for": message.scheduled_for and as_utc(message.scheduled_for),
            "scheduled_until": message.scheduled_until and as_utc(message.scheduled_until),
        }
        subscriber = placeholders["subscriber_id"]
        root = f"<i.{atom(message.incident_id)}.{subscriber}@{self.domain}>"
        own = root if message.is_first else f"<u.{atom(message.update_id)}.{subscriber}@{self.domain}>"
        headers = {
            "From": self.from_header,
            "To": placeholders["address"],
            "Date": format_datetime(as_utc(message.created_at)),
            "Message-ID": own,
        }
        if not message.is_first:
            headers["In-Reply-To"] = root
            headers["References"] = root
        headers |= {
            "List-Id": f"{self.from_name} <{atom(self.settings.page_id)}.{self.domain}>",
            "List-Unsubscribe": (
                f"<{placeholders['unsubscribe_url']}>, <mailto:{self.from_address}?subject=unsubscribe>"
            ),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
            "Content-Language": message.language,
        }
        return {
            "subject": message.subject,
            "text": self._templates.get_template("email/update.txt").render(context) + "\n",
            "html": self._templates.get_template("email/update.html").render(context) + "\n",
            "headers": headers,
        }

    def render_confirmation(self, confirm_url: str, components: Sequence[str] = ()) -> TransactionalMail:
        """The double opt-in mail: ``await channel.send_one(address, **channel.render_confirmation(url))``."""
        context = {
            "page_name": self.settings.page_name,
            "page_url": self.settings.public_url,
            "confirm_url": confirm_url,
            "components": list(components),
        }
        return {
            "subject": i18n.gettext("Confirm your subscription to %(page)s", page=self.settings.page_name),
            "text": self._templates.get_template("email/confirm.txt").render(context) + "\n",
            "html": self._templates.get_template("email/confirm.html").render(context) + "\n",
        }

    def message_bytes(self, rendition: Rendition, recipient: Recipient) -> tuple[str, bytes, str]:
        """``(envelope address, mail as sent, Message-ID)`` of ``rendition`` for ``recipient``.

        Raises ``PermanentError`` when the recipient's address cannot be mailed.
        """
        return self._personalize(self._compile(rendition), recipient)

    def _personalize(self, compiled: CompiledMail, recipient: Recipient, wire: bool = False) -> tuple[str, bytes, str]:
        fallback = self.settings.public_url
        values = {
            "address": smtp_address(recipient.address),
            "subscriber_id": atom(recipient.subscriber_id),
            # Mail must carry a way out even if the core forgot the one-click link.
            "unsubscribe_url": safe_url(recipient.unsubscribe_url or recipient.manage_url or fallback),
            "manage_url": safe_url(recipient.manage_url or recipient.unsubscribe_url or fallback),
        }
        message_id = compiled.message_id.replace("{{subscriber_id}}", values["subscriber_id"])
        data = compiled.wire_for(values) if wire else compiled.message_for(values)
        return values["address"], data, message_id

    def _compile(self, rendition: Rendition) -> CompiledMail:
        headers: Mapping[str, str] = rendition["headers"]
        key = (rendition["subject"], rendition["text"], rendition["html"], tuple(headers.items()))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = CompiledMail(rendition)
            if len(self._compiled) > self.compiled_cache_size:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return compiled

    # sending -------------------------------------------------------------------------------

    async def deliver(
        self, message: Message, rendition: Rendition, recipients: Sequence[Recipient], thread: Thread
    ) -> Mapping[int, Outcome]:
        """Send ``rendition`` to each recipient over one SMTP session.

        Raises ``RetryableError`` when the relay cannot be reached, or the session breaks
        before anything was sent; after that, the unsent get ``RetryableError`` outcomes.
        """
        compiled = self._compile(rendition)
        outcomes: dict[int, Outcome] = {}
        progress = current_progress()  # each mail is in the ledger as it goes: a crash re-sends only the last
        message_ids: dict[int, str] = {}  # of the mails on the wire

        def mails() -> Iterator[Mail]:
            for recipient in recipients:
                if progress.stopping:  # the worker is stopping: the rest is handed back unsent
                    return
                try:
                    address, content, message_ids[recipient.delivery_id] = self._personalize(
                        compiled, recipient, wire=True
                    )
                except PermanentError as undeliverable:
                    outcomes[recipient.delivery_id] = undeliverable
                    continue
                yield recipient.delivery_id, address, content

        def sent(delivery_id: int) -> asyncio.Future[None]:
            outcome = outcomes[delivery_id] = Sent(provider_id=message_ids.pop(delivery_id))
            return progress.report(delivery_id, outcome)

        def refused(delivery_id: int, exc: BaseException) -> None:
            message_ids.pop(delivery_id, None)
            outcomes[delivery_id] = deliver_error(exc)

        async with self._session_slot():
            smtp = self._client()
            try:
                await smtp.connect()
            except SMTP_ERRORS as exc:
                raise RetryableError(deliver_error(exc, "connect").reason) from exc
            try:
                await send_each(smtp, self._mail_from, mails(), sent, refused)
            except SMTP_ERRORS as exc:
                reason = deliver_error(exc).reason
                if not any(isinstance(outcome, Sent) for outcome in outcomes.values()):
                    raise RetryableError(reason) from exc
                for unsent in recipients:
                    outcomes.setdefault(unsent.delivery_id, RetryableError(f"not attempted: {reason}"))
            finally:
                await quit_session(smtp)
        return outcomes

    async def send_direct(self, to: str, message: DirectMessage) -> Sent:
        """``DirectSender``: ``message`` as one mail to ``to``; its Message-ID is the provider id."""
        body = message.html or f"<p>{html.escape(message.text)}</p>"
        return Sent(provider_id=await self.send_one(to, message.subject, message.text, body, message.headers))

    async def send_one(
        self, to: str, subject: str, text: str, html: str, headers: Mapping[str, str] | None = None
    ) -> str:
        """Send one transactional mail (opt-in confirmation and the like); returns its Message-ID.

        Raises ``PermanentError`` or ``RetryableError`` as ``deliver`` would record them.
        """
        mail = EmailMessage(policy=SMTP_POLICY)
        mail["From"] = self.from_header
        mail["To"] = smtp_address(to)
        mail["Subject"] = printable(subject)
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = message_id = make_msgid(domain=self.domain)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(text, cte="quoted-printable")  # before the headers: it drops every Content-* one
        mail.add_alternative(html, subtype="html", cte="quoted-printable")
        for name, value in (headers or {}).items():
            mail[name] = printable(value)
        async with self._session_slot():
            smtp = self._client()
            try:
                await smtp.connect()
                await smtp.send_message(mail)
            except SMTP_ERRORS as exc:
                raise deliver_error(exc) from exc
            finally:
                await quit_session(smtp)
        return message_id

    async def check(self) -> str:
        """Pre-flight (``Checkable``): connect, EHLO, STARTTLS and AUTH as configured, then QUIT; no mail.

        Outside the session slots: a batch holding every slot must not make the check time out.
        """
        await verify_session(self._client())
        config = self.smtp
        steps = "EHLO" + ("/STARTTLS" if config.smtp_starttls else "") + ("/AUTH" if config.smtp_username else "")
        return f"{steps} ok at {config.smtp_host}:{config.smtp_port}"

    def _session_slot(self) -> asyncio.Semaphore:
        """Bounds the SMTP sessions open at once to ``smtp_max_connections``."""
        loop = asyncio.get_running_loop()
        slot = self._sessions.get(loop)
        if slot is None:
            slot = self._sessions[loop] = asyncio.Semaphore(self.smtp.smtp_max_connections)
        return slot

    def _client(self) -> aiosmtplib.SMTP:
        settings = self.smtp
        return aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_s,
        )

    async def aclose(self) -> None:
        """Nothing to release: a session lives only as long as its batch."""


__all__ = [
    "PLACEHOLDERS",
    "EmailChannel",
    "EmailSettings",
    "TransactionalMail",
    "deliver_error",
    "smtp_address",
    "smtp_data",
    "transmit",
]
