"""The SMTP side of the email channel: one mail over an open session, and what a failure means.

``transmit`` speaks ``MAIL``/``RCPT``/``DATA`` through aiosmtplib's ``execute_command`` with
the mail already in wire form; ``deliver_error`` is the one place SMTP answers are read;
``verify_session`` is the pre-flight: a session opened as a send opens it, and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Iterator

import aiosmtplib

from channels._mime import printable
from channels._pipelining import Mail, Refused, Sent, send_pipelined
from channels.base import DeliveryError, PermanentError, RetryableError

# RFC 3463 status codes that say the address itself is dead: 5.1.x (bad mailbox or
# domain) and 5.2.1 (mailbox disabled). 5.7.x (policy, spam) is about the message.
_DEAD_ADDRESS = re.compile(r"\b5\.(1\.\d{1,3}|2\.1)\b")
_ANY_ENHANCED = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_HARD_BOUNCE_CODES = frozenset({550, 551, 553})
SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)
# Answers the server gave within a working dialogue (anything else breaks the session).
SMTP_ANSWERS = (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused)


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
        text = printable(exc.message)[:300]
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
    return RetryableError(f"smtp {stage}: {type(exc).__name__}: {printable(str(exc))[:300] or 'no detail'}")


async def transmit(
    smtp: aiosmtplib.SMTP, mail_from: bytes, address: str, content: bytes, ready: Awaitable[None] | None = None
) -> None:
    """One mail to one recipient over an open session: ``MAIL``, ``RCPT``, ``DATA``.

    ``ready`` is awaited between ``DATA`` and the content: the relay accepts the mail only
    after it (the previous mail's outcome is in the ledger by then, so a crash can re-send
    only the mail whose content was on the wire), while the dialogue so far overlapped it.

    What ``smtp.sendmail(sender, [address], data)`` does (``SIZE`` when the server offers it,
    ``RSET`` after a refusal, the same exceptions), through aiosmtplib's ``execute_command``
    with the addresses already checked and quoted (``mail_from`` is ``b"FROM:<sender>"``)
    and ``content`` already in wire form (``smtp_data(data)``): ``sendmail`` re-parses both
    addresses and runs two regex passes over the whole mail, which cost more CPU than the
    sending itself.
    """
    try:
        await greet(smtp)
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
        if ready is not None:
            await ready
        # execute_command sends its argument and CRLF: the content minus its own final CRLF
        response = await smtp.execute_command(content[:-2])
        if response.code != 250:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
    except aiosmtplib.SMTPResponseException:
        if smtp.is_connected:  # reset the envelope for the next mail, as sendmail does
            with contextlib.suppress(*SMTP_ERRORS):
                await smtp.rset()
        raise


async def greet(smtp: aiosmtplib.SMTP) -> None:
    """EHLO (HELO when refused) once a session, as ``mail()`` would."""
    if smtp.is_ehlo_or_helo_needed:
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError:
            if not smtp.is_connected:
                raise
            await smtp.helo()


async def send_each(
    smtp: aiosmtplib.SMTP, mail_from: bytes, mails: Iterator[Mail], sent: Sent, refused: Refused
) -> None:
    """Send ``mails`` over an open session: pipelined when the relay offers it, else one ``transmit`` each.

    Each mail ends in ``sent(key)`` (whose awaitable is awaited before the next mail's content
    goes out) or ``refused(key, error)``. A broken session raises its error once the mail it
    cut off was ``refused``; the mails not taken from ``mails`` were not attempted.
    """
    await greet(smtp)
    if smtp.supports_extension("pipelining"):
        await send_pipelined(smtp, mail_from, mails, sent, refused)
        return
    written: Awaitable[None] | None = None
    for key, address, content in mails:
        try:
            await transmit(smtp, mail_from, address, content, ready=written)
        except SMTP_ERRORS as exc:
            refused(key, exc)
            if smtp.is_connected and isinstance(exc, SMTP_ANSWERS):
                continue
            smtp.close()  # a timeout leaves the dialogue out of step: never reuse it
            raise
        written = sent(key)


async def quit_session(smtp: aiosmtplib.SMTP) -> None:
    """End the session with QUIT, or just close it when the server no longer answers."""
    if smtp.is_connected:
        try:
            await smtp.quit()
        except SMTP_ERRORS:
            smtp.close()


async def verify_session(smtp: aiosmtplib.SMTP) -> None:
    """Open a session as a send would (connect, EHLO, STARTTLS and AUTH as configured), then QUIT.

    Sends no mail. Raises ``deliver_error``'s reading of the failure, naming the stage.
    """
    try:
        await smtp.connect()  # STARTTLS and AUTH happen here when the client is configured for them
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo()
    except SMTP_ERRORS as exc:
        smtp.close()
        stage = "connect"
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            stage = "auth"
        elif isinstance(exc, aiosmtplib.SMTPHeloError):
            stage = "ehlo"
        raise deliver_error(exc, stage) from exc
    except asyncio.CancelledError:
        smtp.close()  # cut off mid-dialogue (a timeout): a QUIT now would only wait for nothing
        raise
    await quit_session(smtp)
