"""Email over SMTP: one rendition per update, turned into bytes once, sent to many.

Enabled by ``BROADCASTER_SMTP_HOST`` + ``BROADCASTER_EMAIL_FROM`` (``_SMTP_PORT``,
``_USERNAME``/``_PASSWORD`` and ``_STARTTLS`` as the relay needs). ``render`` is the exact
mail the preview shows; what differs per subscriber appears in it as placeholders::

    >>> EmailChannel(settings).render(message)["headers"]["To"]
    '{{address}}'

Building an ``EmailMessage`` per recipient costs several times the sending itself (see
``performance.md``), so ``deliver`` compiles the rendition once into a multipart/alternative
message as bytes (quoted-printable UTF-8 parts) cut at the placeholders, and per recipient
only joins those pieces with the recipient's few encoded values, already dot-stuffed for
DATA (``_Compiled.wire``), and ``transmit`` hands them to aiosmtplib's ``execute_command``
instead of ``sendmail``, which would re-parse the addresses and scan the whole mail twice.
Each batch goes through one SMTP session; ``smtp_max_connections`` bounds the sessions open
at once.

Every mail of an incident threads in mail clients: the first update's ``Message-ID`` is the
thread root ``<i.{incident}.{subscriber}@{domain}>``, later ones are
``<u.{update}.{subscriber}@{domain}>`` with ``In-Reply-To`` and ``References`` naming the
root. The ids are stable, so a retried mail is recognisably the same mail.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hashlib
import html
import re
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, ClassVar, Self, TypedDict
from urllib.parse import quote

import aiosmtplib
from pydantic import Field, SecretStr, model_validator

from broadcaster.render import environment
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
    Recipient,
    Rendition,
    RetryableError,
    Sent,
    Settings,
    Thread,
)

PLACEHOLDERS = ("address", "subscriber_id", "unsubscribe_url", "manage_url")
"""Per-recipient values; a rendition holds them as ``{{name}}``."""

_PLACEHOLDER = re.compile(r"\{\{(address|subscriber_id|unsubscribe_url|manage_url)\}\}")
# Headers whose value holds placeholders; every other header is the same for all recipients.
_PER_RECIPIENT_HEADERS = ("To", "Message-ID", "In-Reply-To", "References", "List-Unsubscribe")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ATOM = re.compile(r"[A-Za-z0-9._-]+")
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~-._"
_PLAIN_URL = re.compile(r"[A-Za-z0-9:/?#\[\]@!$&'()*+,;=%~._-]+")
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# RFC 3463 status codes that say the address itself is dead: 5.1.x (bad mailbox or
# domain) and 5.2.1 (mailbox disabled). 5.7.x (policy, spam) is about the message.
_DEAD_ADDRESS = re.compile(r"\b5\.(1\.\d{1,3}|2\.1)\b")
_ANY_ENHANCED = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_HARD_BOUNCE_CODES = frozenset({550, 551, 553})
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")

CRLF = "\r\n"
_SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)
# Answers the server gave within a working dialogue (anything else breaks the session).
_ANSWERS = (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused)


def deliver_error(exc: BaseException, stage: str = "send") -> DeliveryError:
    """What an SMTP failure means for the ledger: the one place SMTP answers are read.

    A 5xx about a recipient or its message is permanent, and marks the address for
    suppression when it is a hard bounce (``550 5.1.1``; without an enhanced code, 550,
    551 or 553 to ``RCPT``). 4xx, 421, refusals of our sender or login, lost connections and
    timeouts are retryable.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc, stage = exc.recipients[0], "rcpt"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = _printable(exc.message)[:300]
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            stage = "rcpt"
        elif isinstance(exc, aiosmtplib.SMTPDataError):
            stage = "data"
        elif isinstance(exc, aiosmtplib.SMTPSenderRefused):
            stage = "mail from"
        reason = f"smtp {exc.code} at {stage}: {text}"
        about_us = isinstance(
            exc, aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPHeloError
        )
        if exc.code < 500 or about_us or stage == "connect":
            return RetryableError(reason)
        if _ANY_ENHANCED.search(text):
            dead = bool(_DEAD_ADDRESS.search(text))
        else:
            dead = stage == "rcpt" and exc.code in _HARD_BOUNCE_CODES
        return PermanentError(reason, suppress_recipient=dead)
    return RetryableError(f"smtp {stage}: {type(exc).__name__}: {_printable(str(exc))[:300] or 'no detail'}")


def _printable(text: str) -> str:
    """``text`` with each run of control characters (CR and LF among them) made one space."""
    return _CONTROL.sub(" ", text).strip()


def _qp(data: bytes) -> bytes:
    """``data`` quoted-printable encoded with CRLF line ends, no line over 76 characters."""
    # binascii's encoder is C, but breaks lines with a bare LF and lets a line that ends in
    # an encoded space reach 77 characters.
    encoded: bytes = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    lines = encoded.split(b"\n")
    if any(len(line) > 76 for line in lines):
        lines = [part for line in lines for part in _cut(line)]
    return b"\r\n".join(lines)


def _cut(line: bytes) -> list[bytes]:
    """A quoted-printable line as soft-broken lines of at most 76, never cutting an ``=XX``."""
    parts = []
    while len(line) > 76:
        cut = 75 - (2 if line[73:74] == b"=" else 1 if line[74:75] == b"=" else 0)
        parts.append(line[:cut] + b"=")
        line = line[cut:]
    parts.append(line)
    return parts


def _soft_end(encoded: bytes) -> bytes:
    """``encoded`` (quoted-printable) ending in a soft line break, so what follows starts a line."""
    if encoded.endswith(b"\r\n"):
        return encoded
    head, sep, last = encoded.rpartition(b"\r\n")
    return head + sep + b"\r\n".join(_cut(last + b"=")) + b"\r\n"


def _fold(name: str, value: str) -> bytes:
    """One header line, RFC 2047-encoded when not ASCII, folded at 78 columns."""
    folded: str = SMTP_POLICY.header_factory(name, _printable(value)).fold(policy=SMTP_POLICY)
    return folded.encode("ascii")


def _fold_text(name: str, value: str) -> bytes:
    """An unstructured header (Subject): wrapped at spaces, or RFC 2047 words when not ASCII.

    Unfolding gives back exactly ``value``, which the email package's folding does not
    promise (it may break right after the colon).
    """
    value = _printable(value)
    if not value.isascii():
        encoded = Header(value, "utf-8", header_name=name).encode(linesep=CRLF)
        return f"{name}: {encoded}{CRLF}".encode("ascii")
    lines, line = [], f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > 78 and line.strip() not in ("", f"{name}:"):
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return (CRLF.join(lines) + CRLF).encode("ascii")


def _atom(value: str) -> str:
    """``value`` if it can sit inside a Message-ID, else a stable digest of it."""
    return value if _ATOM.fullmatch(value) else hashlib.sha256(value.encode()).hexdigest()[:24]


def _url(value: str) -> str:
    """``value`` percent-encoded down to what a header and a QP body carry verbatim."""
    return value if _PLAIN_URL.fullmatch(value) else quote(value, safe=_URL_SAFE)


def smtp_address(address: str) -> str:
    """``address`` as it goes into RCPT TO and the To header: ASCII, IDNA domain.

    Raises ``PermanentError`` for what no SMTP server accepts (a UTF-8 local part would
    need SMTPUTF8, which we do not speak).
    """
    address = address.strip()
    if not _ADDRESS.fullmatch(address):
        local, at, domain = address.rpartition("@")
        with contextlib.suppress(UnicodeError):
            address = f"{local}{at}{domain.encode('idna').decode('ascii')}" if at else address
        if not _ADDRESS.fullmatch(address):
            raise PermanentError(f"not a deliverable email address: {_printable(address)[:100]!r}")
    return address


class TransactionalMail(TypedDict):
    """A one-off mail as ``send_one`` keywords."""

    subject: str
    text: str
    html: str


_Encoder = Callable[[str], bytes]
_ENCODERS: dict[str, _Encoder] = {
    "header": lambda value: value.encode("ascii"),
    "text": lambda value: _soft_end(_qp(value.encode())),
    "html": lambda value: _soft_end(_qp(html.escape(value).encode())),
}


class _Compiled:
    """A rendition as bytes, cut at its placeholders: ``pieces`` are bytes or slot numbers.

    A slot is a (context, placeholder) pair: the same value goes into a header raw, into
    the text part and the HTML part (escaped) quoted-printable encoded. A body piece never
    ends mid-line without a soft line break, and neither does an encoded value, so each
    starts at column 0 and every line stays within 76 characters wherever the cut falls.
    """

    __slots__ = ("message_id", "pieces", "slots", "wire")

    def __init__(self, rendition: Rendition) -> None:
        pieces: list[bytes | int] = []
        slots: dict[tuple[str, str], int] = {}

        def literal(data: bytes) -> None:
            if pieces and isinstance(pieces[-1], bytes):
                pieces[-1] += data
            elif data:
                pieces.append(data)

        def templated(context: str, text: str, encode: Callable[[str], bytes]) -> None:
            for i, part in enumerate(_PLACEHOLDER.split(text)):
                if i % 2:
                    pieces.append(slots.setdefault((context, part), len(slots)))
                elif part:
                    literal(encode(part))

        def body(context: str, text: str) -> None:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            templated(context, text, lambda part: _soft_end(_qp(part.encode())))

        headers: Mapping[str, str] = rendition["headers"]
        self.message_id: str = headers["Message-ID"]
        boundary = f"=_bc_{secrets.token_hex(12)}"  # "=_" never occurs in quoted-printable
        ordered = {"From": headers["From"], "To": headers["To"], "Subject": rendition["subject"], **headers}
        for name, value in ordered.items():
            if name in _PER_RECIPIENT_HEADERS:
                value = _printable(value)
                if name == "List-Unsubscribe":
                    value = value.replace(", ", ",\r\n ")
                templated("header", f"{name}: {value}\r\n", lambda part: part.encode("ascii"))
            else:
                literal(_fold_text(name, value) if name == "Subject" else _fold(name, value))
        literal(
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/alternative;\r\n boundary="' + boundary.encode() + b'"\r\n'
            b"\r\n"
        )
        for subtype, context in (("plain", "text"), ("html", "html")):
            literal(
                b"--" + boundary.encode() + b"\r\n"
                b"Content-Type: text/" + subtype.encode() + b'; charset="utf-8"\r\n'
                b"Content-Transfer-Encoding: quoted-printable\r\n"
                b"\r\n"
            )
            body(context, rendition[context])
            literal(b"\r\n")
        literal(b"--" + boundary.encode() + b"--\r\n")
        self.pieces = tuple(pieces)
        self.slots = tuple(slots)
        # The DATA content: each literal stuffed once; one that follows a body slot starts a line.
        body_slots = {n for (context, _name), n in slots.items() if context != "header"}
        self.wire = (*(
            piece if isinstance(piece, int) else _stuffed(piece, i == 0 or pieces[i - 1] in body_slots)
            for i, piece in enumerate(pieces)
        ), b".\r\n")

    def message_for(self, values: Mapping[str, str]) -> bytes:
        """The whole mail for one recipient; ``values`` maps each placeholder to safe text."""
        encoded = [_ENCODERS[context](values[name]) for context, name in self.slots]
        return b"".join([piece if isinstance(piece, bytes) else encoded[piece] for piece in self.pieces])

    def wire_for(self, values: Mapping[str, str]) -> bytes:
        """``smtp_data(self.message_for(values))``, from pieces stuffed once at compile time.

        Only the values of body slots can hold a line that starts with a period (each starts
        a line); header values sit after ``Name: `` and hold no line break.
        """
        encoded = [
            _ENCODERS[context](values[name]) if context == "header"
            else _stuffed(_ENCODERS[context](values[name]), True, crlf=True)
            for context, name in self.slots
        ]
        return b"".join([piece if isinstance(piece, bytes) else encoded[piece] for piece in self.wire])


def _stuffed(data: bytes, at_line_start: bool, crlf: bool = False) -> bytes:
    """``data`` with CRLF line ends and every line that starts with a period given a second one.

    ``crlf``: the caller knows ``data`` has CRLF line ends only (quoted-printable from ``_qp``).
    """
    if not crlf and (data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n")):
        data = _LINE_ENDS.sub(b"\r\n", data)  # never for the channel's own pieces: they are built CRLF
    if b"\n." in data:
        data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if at_line_start and data.startswith(b".") else data


class EmailSettings(ChannelSettings):
    """``BROADCASTER_SMTP_HOST`` and ``BROADCASTER_EMAIL_FROM`` (both, or neither); the relay's
    ``_SMTP_PORT``, ``_SMTP_USERNAME`` / ``_SMTP_PASSWORD`` (both, or neither), ``_SMTP_STARTTLS``,
    ``_SMTP_TIMEOUT_S`` and ``_SMTP_MAX_CONNECTIONS`` (sessions open at once)."""

    title: ClassVar[str] = "Email"
    required: ClassVar[tuple[str, ...]] = ("smtp_host", "email_from")
    # Port 1 on loopback: nothing listens there, so a contract test's send fails at once.
    example: ClassVar[Mapping[str, Any]] = {
        "smtp_host": "127.0.0.1", "smtp_port": 1, "email_from": "status@example.test",
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
        self.from_header = str(Address(_printable(self.from_name), local, domain))  # quoted as needed
        self._mail_from = b"FROM:<" + self.from_address.encode("ascii") + b">"
        self._templates = environment(settings.templates_dir)
        # A semaphore belongs to one event loop; tests and CLI commands may bring several.
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._compiled: OrderedDict[tuple[Any, ...], _Compiled] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = EmailSettings.from_core(settings)
        return None if config is None else cls(settings, config)

    # rendering -----------------------------------------------------------------------------

    def render(self, message: Message) -> Rendition:
        """Subject, text and HTML parts, and headers, with ``{{placeholders}}`` per recipient."""
        placeholders = {name: f"{{{{{name}}}}}" for name in PLACEHOLDERS}
        context = {
            "message": message,
            "subject": message.subject,
            "unsubscribe_url": placeholders["unsubscribe_url"],
            "manage_url": placeholders["manage_url"],
            "created_at": _utc(message.created_at),
            "next_update_at": message.next_update_at and _utc(message.next_update_at),
            "scheduled_for": message.scheduled_for and _utc(message.scheduled_for),
            "scheduled_until": message.scheduled_until and _utc(message.scheduled_until),
        }
        subscriber = placeholders["subscriber_id"]
        root = f"<i.{_atom(message.incident_id)}.{subscriber}@{self.domain}>"
        own = root if message.is_first else f"<u.{_atom(message.update_id)}.{subscriber}@{self.domain}>"
        headers = {
            "From": self.from_header,
            "To": placeholders["address"],
            "Date": format_datetime(_utc(message.created_at)),
            "Message-ID": own,
        }
        if not message.is_first:
            headers["In-Reply-To"] = root
            headers["References"] = root
        headers |= {
            "List-Id": f"{self.from_name} <{_atom(self.settings.page_id)}.{self.domain}>",
            "List-Unsubscribe": (
                f"<{placeholders['unsubscribe_url']}>, <mailto:{self.from_address}?subject=unsubscribe>"
            ),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
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
            "subject": f"Confirm your subscription to {self.settings.page_name}",
            "text": self._templates.get_template("email/confirm.txt").render(context) + "\n",
            "html": self._templates.get_template("email/confirm.html").render(context) + "\n",
        }

    def message_bytes(self, rendition: Rendition, recipient: Recipient) -> tuple[str, bytes, str]:
        """``(envelope address, mail as sent, Message-ID)`` of ``rendition`` for ``recipient``.

        Raises ``PermanentError`` when the recipient's address cannot be mailed.
        """
        return self._personalize(self._compile(rendition), recipient)

    def _personalize(self, compiled: _Compiled, recipient: Recipient, wire: bool = False) -> tuple[str, bytes, str]:
        fallback = self.settings.public_url
        values = {
            "address": smtp_address(recipient.address),
            "subscriber_id": _atom(recipient.subscriber_id),
            # Mail must carry a way out even if the core forgot the one-click link.
            "unsubscribe_url": _url(recipient.unsubscribe_url or recipient.manage_url or fallback),
            "manage_url": _url(recipient.manage_url or recipient.unsubscribe_url or fallback),
        }
        message_id = compiled.message_id.replace("{{subscriber_id}}", values["subscriber_id"])
        data = compiled.wire_for(values) if wire else compiled.message_for(values)
        return values["address"], data, message_id

    def _compile(self, rendition: Rendition) -> _Compiled:
        headers: Mapping[str, str] = rendition["headers"]
        key = (rendition["subject"], rendition["text"], rendition["html"], tuple(headers.items()))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(rendition)
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
        async with self._session_slot():
            smtp = self._client()
            try:
                await smtp.connect()
            except _SMTP_ERRORS as exc:
                raise RetryableError(deliver_error(exc, "connect").reason) from exc
            try:
                for index, recipient in enumerate(recipients):
                    try:
                        address, content, message_id = self._personalize(compiled, recipient, wire=True)
                    except PermanentError as undeliverable:
                        outcomes[recipient.delivery_id] = undeliverable
                        continue
                    try:
                        await transmit(smtp, self._mail_from, address, content)
                    except _SMTP_ERRORS as exc:
                        error = outcomes[recipient.delivery_id] = deliver_error(exc)
                        if smtp.is_connected and isinstance(exc, _ANSWERS):
                            continue
                        smtp.close()  # a timeout leaves the dialogue out of step: never reuse it
                        if not any(isinstance(outcome, Sent) for outcome in outcomes.values()):
                            raise RetryableError(error.reason) from exc
                        for unsent in recipients[index + 1 :]:
                            outcomes[unsent.delivery_id] = RetryableError(f"not attempted: {error.reason}")
                        break
                    outcomes[recipient.delivery_id] = Sent(provider_id=message_id)
            finally:
                await _quit(smtp)
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
        mail["Subject"] = _printable(subject)
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = message_id = make_msgid(domain=self.domain)
        mail["Auto-Submitted"] = "auto-generated"
        for name, value in (headers or {}).items():
            mail[name] = _printable(value)
        mail.set_content(text, cte="quoted-printable")
        mail.add_alternative(html, subtype="html", cte="quoted-printable")
        async with self._session_slot():
            smtp = self._client()
            try:
                await smtp.connect()
                await smtp.send_message(mail)
            except _SMTP_ERRORS as exc:
                raise deliver_error(exc) from exc
            finally:
                await _quit(smtp)
        return message_id

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


def smtp_data(data: bytes) -> bytes:
    """``data`` as the DATA content goes on the wire, ending in the ``CRLF.CRLF`` that closes it.

    Line ends made CRLF and every line that starts with a period doubled (RFC 5321 4.5.2):
    what aiosmtplib's ``data()`` does with two regex passes. The channel's own mails get
    the same bytes from ``_Compiled.wire_for``, stuffed once per update, not per mail.
    """
    data = _stuffed(data, True)
    return data + b".\r\n" if data.endswith(b"\r\n") else data + b"\r\n.\r\n"


async def transmit(smtp: aiosmtplib.SMTP, mail_from: bytes, address: str, content: bytes) -> None:
    """One mail to one recipient over an open session: ``MAIL``, ``RCPT``, ``DATA``.

    What ``smtp.sendmail(sender, [address], data)`` does (``SIZE`` when the server offers it,
    ``RSET`` after a refusal, the same exceptions), through aiosmtplib's ``execute_command``
    with the addresses already checked and quoted (``mail_from`` is ``b"FROM:<sender>"``)
    and ``content`` already in wire form (``smtp_data(data)``): ``sendmail`` re-parses both
    addresses and runs two regex passes over the whole mail, which cost more CPU than the
    sending itself.
    """
    try:
        if smtp.is_ehlo_or_helo_needed:  # once a session, as mail() would
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                if not smtp.is_connected:
                    raise
                await smtp.helo()
        options = (b"SIZE=%d" % len(content),) if smtp.supports_extension("size") else ()
        response = await smtp.execute_command(b"MAIL", mail_from, *options)
        if response.code != 250:
            raise aiosmtplib.SMTPSenderRefused(response.code, response.message, mail_from[6:-1].decode())
        response = await smtp.execute_command(b"RCPT", b"TO:<" + address.encode("ascii") + b">")
        if response.code not in (250, 251):
            raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, address)
        response = await smtp.execute_command(b"DATA")
        if response.code != 354:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        # execute_command sends its argument and CRLF: the content minus its own final CRLF
        response = await smtp.execute_command(content[:-2])
        if response.code != 250:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
    except aiosmtplib.SMTPResponseException:
        if smtp.is_connected:  # reset the envelope for the next mail, as sendmail does
            with contextlib.suppress(*_SMTP_ERRORS):
                await smtp.rset()
        raise


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    if smtp.is_connected:
        try:
            await smtp.quit()
        except _SMTP_ERRORS:
            smtp.close()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
