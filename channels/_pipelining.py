"""SMTP command pipelining (RFC 2920) over aiosmtplib's own connection.

When the relay offers ``PIPELINING``, a mail costs one write and one read instead of four
round trips: its content goes out in the same write as the next mail's ``MAIL``, ``RCPT``
and ``DATA``, and the four replies come back together. aiosmtplib still connects, speaks
EHLO, STARTTLS and AUTH, and parses every reply; what it lacks for pipelining is a reader
that keeps replies which arrive together: its protocol parses one reply per ``data_received``
and drops data that arrives while the previous reply waits to be read. ``_Feed`` sits between
the transport and that protocol and keeps such data in the protocol's buffer instead.

The crash-safety of the plain path holds: a mail's content is written only once the
previous mail's outcome is in the ledger (``ready``), so a crash re-sends at most the one
mail of a session whose content was on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol
from aiosmtplib.response import SMTPResponse

Mail = tuple[int, str, bytes]
"""(key, envelope address, content in wire form, ending with ``.`` CRLF)."""
Sent = Callable[[int], Awaitable[None] | None]  # accepted; what it returns is awaited before the next content
Refused = Callable[[int, BaseException], None]  # refused, or cut off when the session broke


class _Feed(asyncio.Protocol):
    """Forwards to aiosmtplib's protocol, keeping data it would drop while a reply waits to be read."""

    def __init__(self, inner: SMTPProtocol) -> None:
        self.inner = inner

    def data_received(self, data: bytes) -> None:
        waiter = self.inner._response_waiter
        if waiter is not None and waiter.done():
            self.inner._buffer.extend(data)  # read by ``_Replies.next`` after the waiting reply
        else:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Replies:
    """Replies of one session in order: the one aiosmtplib parsed, then those still buffered."""

    def __init__(self, smtp: aiosmtplib.SMTP) -> None:
        protocol, transport = smtp.protocol, smtp.transport
        assert protocol is not None and transport is not None
        if not isinstance(transport.get_protocol(), _Feed):
            transport.set_protocol(_Feed(protocol))
        self.smtp = smtp
        self.protocol = protocol
        self.timeout = smtp.timeout

    async def next(self) -> SMTPResponse:
        protocol = self.protocol
        waiter = protocol._response_waiter
        reply = None if waiter is None or waiter.done() else protocol._read_response_from_buffer()
        if reply is None:
            try:
                reply = await protocol.read_response(timeout=self.timeout)
            except aiosmtplib.SMTPServerDisconnected:
                self.smtp.close()
                raise
        if reply.code == 421:  # the server is closing the session: as execute_command does, close it too
            self.smtp.close()
            raise aiosmtplib.SMTPResponseException(reply.code, reply.message)
        return reply


def _refusal(mail_from: bytes, address: str, replies: list[SMTPResponse]) -> aiosmtplib.SMTPResponseException | None:
    """The exception ``transmit`` would raise for these MAIL, RCPT and DATA replies; None when all went well."""
    mail, rcpt, data = replies
    if mail.code != 250:
        return aiosmtplib.SMTPSenderRefused(mail.code, mail.message, mail_from[6:-1].decode())
    if rcpt.code not in (250, 251):
        return aiosmtplib.SMTPRecipientRefused(rcpt.code, rcpt.message, address)
    if data.code != 354:
        return aiosmtplib.SMTPDataError(data.code, data.message)
    return None


async def send_pipelined(
    smtp: aiosmtplib.SMTP, mail_from: bytes, mails: Iterator[Mail], sent: Sent, refused: Refused
) -> None:
    """Send ``mails`` over an open session whose relay offers PIPELINING.

    Each mail ends in ``sent(key)`` or ``refused(key, error)``; the errors are those
    ``transmit`` raises, and after a refusal the envelope is reset (``RSET``), as ``sendmail``
    does. When the session breaks, the mail whose outcome is unknown is ``refused`` with the
    error, which is then raised; mails not yet taken from ``mails`` were not attempted.
    """
    replies = _Replies(smtp)
    size = smtp.supports_extension("size")

    def envelope(mail: Mail) -> bytes:
        options = b" SIZE=%d" % len(mail[2]) if size else b""
        return b"MAIL " + mail_from + options + b"\r\nRCPT TO:<" + mail[1].encode("ascii") + b">\r\nDATA\r\n"

    current = next(mails, None)  # the mail whose envelope is on the wire
    if current is None:
        return
    previous: Mail | None = None  # the mail whose content is on the wire
    written: Awaitable[None] | None = None  # the previous accepted mail's ledger write
    protocol = replies.protocol
    protocol.write(envelope(current))
    try:
        while True:
            if previous is not None:
                reply = await replies.next()
                if reply.code == 250:
                    written = sent(previous[0])
                else:  # the transaction ended with this reply: the next envelope stands, no RSET
                    refused(previous[0], aiosmtplib.SMTPDataError(reply.code, reply.message))
                previous = None
            if current is None:
                return
            answers = [await replies.next() for _ in range(3)]
            refusal = _refusal(mail_from, current[1], answers)
            if refusal is not None:
                if answers[2].code == 354:  # a relay that took DATA without a recipient: end it empty
                    protocol.write(b".\r\n")
                    await replies.next()
                if not smtp.is_connected:
                    raise refusal
                refused(current[0], refusal)
                await smtp.rset()
                current = next(mails, None)
                if current is not None:
                    protocol.write(envelope(current))
                continue
            if written is not None:
                await written  # the relay accepts this mail only once the previous one is in the ledger
            previous, current = current, next(mails, None)
            protocol.write(previous[2] if current is None else previous[2] + envelope(current))
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        unknown = previous or current
        if unknown is not None:
            refused(unknown[0], exc)
        smtp.close()  # replies may still be on their way: the dialogue is out of step, never reuse it
        raise
