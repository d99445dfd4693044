"""An email as the bytes sent: compiled once per rendition, joined per recipient.

Building an ``EmailMessage`` per recipient costs several times the sending itself (see
``performance.md``), so a rendition is compiled once (``CompiledMail``) into a
multipart/alternative message as bytes (quoted-printable UTF-8 parts) cut at its
``{{placeholders}}``; per recipient only those pieces are joined with the recipient's few
encoded values, already dot-stuffed for SMTP's DATA (``CompiledMail.wire_for``).
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import html
import re
import secrets
from collections.abc import Callable, Mapping
from email.header import Header
from email.policy import SMTP as SMTP_POLICY
from urllib.parse import quote

from channels.base import PermanentError, Rendition

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
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
CRLF = "\r\n"


def printable(text: str) -> str:
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
    folded: str = SMTP_POLICY.header_factory(name, printable(value)).fold(policy=SMTP_POLICY)
    return folded.encode("ascii")


def _fold_text(name: str, value: str) -> bytes:
    """An unstructured header (Subject): wrapped at spaces, or RFC 2047 words when not ASCII.

    Unfolding gives back exactly ``value``, which the email package's folding does not
    promise (it may break right after the colon).
    """
    value = printable(value)
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


def atom(value: str) -> str:
    """``value`` if it can sit inside a Message-ID, else a stable digest of it."""
    return value if _ATOM.fullmatch(value) else hashlib.sha256(value.encode()).hexdigest()[:24]


def safe_url(value: str) -> str:
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
            raise PermanentError(f"not a deliverable email address: {printable(address)[:100]!r}")
    return address


_Encoder = Callable[[str], bytes]
_ENCODERS: dict[str, _Encoder] = {
    "header": lambda value: value.encode("ascii"),
    "text": lambda value: _soft_end(_qp(value.encode())),
    "html": lambda value: _soft_end(_qp(html.escape(value).encode())),
}


class CompiledMail:
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
                value = printable(value)
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
        self.wire = (
            *(
                piece if isinstance(piece, int) else _stuffed(piece, i == 0 or pieces[i - 1] in body_slots)
                for i, piece in enumerate(pieces)
            ),
            b".\r\n",
        )

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
            _ENCODERS[context](values[name])
            if context == "header"
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


def smtp_data(data: bytes) -> bytes:
    """``data`` as the DATA content goes on the wire, ending in the ``CRLF.CRLF`` that closes it.

    Line ends made CRLF and every line that starts with a period doubled (RFC 5321 4.5.2):
    what aiosmtplib's ``data()`` does with two regex passes. The channel's own mails get
    the same bytes from ``CompiledMail.wire_for``, stuffed once per update, not per mail.
    """
    data = _stuffed(data, True)
    return data + b".\r\n" if data.endswith(b"\r\n") else data + b"\r\n.\r\n"
