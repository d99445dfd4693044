"""A real SMTP server (aiosmtpd) on a loopback port that records what it accepted.

It can be told to misbehave the way relays do::

    with recording_smtp() as smtp:
        smtp.refuse("gone@example.org")          # 550 5.1.1 to RCPT TO
        smtp.defer_for(5)                         # 450 4.2.0 to every RCPT TO for 5 s
        smtp.unavailable_for(5)                   # greet new connections with 421, then hang up
        smtp.hang_up_after(3)                     # 421 to MAIL FROM once 3 mails were accepted
        ...
        smtp.messages                              # parsed, in order received

The server runs in aiosmtpd's own thread and event loop, so it works from sync and async
tests alike.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox.serve import free_port


@dataclass(frozen=True)
class Received:
    """One accepted mail transaction."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class RecordingHandler:
    """aiosmtpd handler: accepts, records, and fails on request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.refused: dict[str, str] = {}
        self.data_replies: dict[str, str] = {}
        self.defer_until = 0.0
        self.defer_reply = "450 4.2.0 Mailbox busy, try again later"
        self.unavailable_until = 0.0
        self.hang_up_after_count: int | None = None
        self.connections = 0
        self.on_accept: Callable[[Received], None] | None = None  # called (in the server's thread) per mail

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.hang_up_after_count is not None and len(self.received) >= self.hang_up_after_count:
            return "421 4.3.2 Service shutting down, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refused:
            return self.refused[address.lower()]
        if time.monotonic() < self.defer_until:
            return self.defer_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            if rcpt.lower() in self.data_replies:
                return self.data_replies[rcpt.lower()]
        content = envelope.original_content or b""
        received = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content))
        with self._lock:
            self.received.append(received)
            number = len(self.received)
        if self.on_accept is not None:
            self.on_accept(received)
        return f"250 2.0.0 OK queued as Q{number}"


class _MisbehavingSMTP(SMTP):
    async def _handle_client(self) -> None:
        handler = self.event_handler
        assert isinstance(handler, RecordingHandler)
        handler.connections += 1
        if time.monotonic() < handler.unavailable_until:
            await self.push("421 4.3.2 Service not available, try again later")
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _MisbehavingSMTP(self.handler, **self.SMTP_kwargs)


class RecordingSMTP:
    """The running server: where it listens, what it received, how it should fail."""

    def __init__(self, handler: RecordingHandler, host: str, port: int) -> None:
        self.handler = handler
        self.host = host
        self.port = port

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    @property
    def messages(self) -> list[EmailMessage]:
        return [received.message for received in self.handler.received]

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user here") -> None:
        """Answer ``reply`` to ``RCPT TO:<address>``."""
        self.handler.refused[address.lower()] = reply

    def refuse_data(self, address: str, reply: str = "554 5.7.1 Message rejected as spam") -> None:
        """Accept ``address`` at RCPT TO but answer ``reply`` to the data of its mail."""
        self.handler.data_replies[address.lower()] = reply

    def defer_for(self, seconds: float, reply: str | None = None) -> None:
        """Answer every RCPT TO with a 4xx for ``seconds``."""
        self.handler.defer_until = time.monotonic() + seconds
        if reply is not None:
            self.handler.defer_reply = reply

    def unavailable_for(self, seconds: float) -> None:
        """Greet new connections with 421 and hang up, for ``seconds``."""
        self.handler.unavailable_until = time.monotonic() + seconds

    def hang_up_after(self, count: int | None) -> None:
        """Once ``count`` mails were accepted, answer MAIL FROM with 421 (``None``: never)."""
        self.handler.hang_up_after_count = count

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """``Settings`` keywords that point the email channel at this server."""
        defaults = {"smtp_host": self.host, "smtp_port": self.port, "email_from": "status@example.com"}
        return defaults | overrides


@contextlib.contextmanager
def recording_smtp(
    *, host: str = "127.0.0.1", port: int | None = None, **smtp_parameters: Any
) -> Iterator[RecordingSMTP]:
    """Run a recording SMTP server on ``host`` (a free port unless ``port``) for the ``with`` block."""
    handler = RecordingHandler()
    port = port or free_port()
    controller = _Controller(handler, hostname=host, port=port, server_hostname="smtp.test", **smtp_parameters)
    controller.start()
    try:
        yield RecordingSMTP(handler, host, port)
    finally:
        controller.stop()
