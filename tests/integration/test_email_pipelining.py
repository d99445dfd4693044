"""The email channel against relays that offer PIPELINING (RFC 2920): same outcomes, fewer round trips."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from broadcaster.config import Settings
from broadcaster.delivery.channel import Sent
from broadcaster.delivery.progress import Progress, reporting
from broadcaster.errors import PermanentError, RetryableError
from channels.email import EmailChannel
from sandbox.serve import free_port
from sandbox.smtp import RecordingHandler, RecordingSMTP, _Controller
from tests.support.factories import email_recipients as recipients
from tests.support.factories import make_message
from tests.support.smtp_checks import session_lost_midway_keeps_what_was_sent


class PipeliningHandler(RecordingHandler):
    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    handler = PipeliningHandler()
    port = free_port()
    controller = _Controller(handler, hostname="127.0.0.1", port=port, server_hostname="smtp.test")
    controller.start()
    try:
        yield RecordingSMTP(handler, "127.0.0.1", port)
    finally:
        controller.stop()


def channel_for(port: int) -> EmailChannel:
    return EmailChannel(Settings(smtp_host="127.0.0.1", smtp_port=port, email_from="status@example.com"))


async def test_refusals_are_read_per_mail_and_the_rest_is_sent(smtp: RecordingSMTP) -> None:
    smtp.refuse("gone@example.org", "550 5.1.1 <gone@example.org>: Recipient address rejected")
    smtp.refuse_data("spammy@example.org", "554 5.7.1 Message rejected as spam")
    channel = channel_for(smtp.port)
    people = recipients("alice@example.org", "gone@example.org", "spammy@example.org", "bob@example.net")
    message = make_message()
    rendition = channel.render(message)

    outcomes = await channel.deliver(message, rendition, people, {})

    assert isinstance(outcomes[1], Sent) and isinstance(outcomes[4], Sent)
    bounce = outcomes[2]
    assert isinstance(bounce, PermanentError) and bounce.suppress_recipient and "550" in bounce.reason
    rejected = outcomes[3]
    assert isinstance(rejected, PermanentError) and not rejected.suppress_recipient and "554" in rejected.reason
    assert [r.rcpt_tos for r in smtp.received] == [("alice@example.org",), ("bob@example.net",)]
    for person, received in zip((people[0], people[3]), smtp.received, strict=True):
        _address, data, message_id = channel.message_bytes(rendition, person)
        assert received.data.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
        assert outcomes[person.delivery_id] == Sent(provider_id=message_id)


async def test_deferral_is_retryable_per_recipient(smtp: RecordingSMTP) -> None:
    smtp.defer_for(60)
    channel = channel_for(smtp.port)
    message = make_message()

    outcomes = await channel.deliver(message, channel.render(message), recipients("a@example.org", "b@example.org"), {})

    assert all(isinstance(o, RetryableError) and "450" in o.reason for o in outcomes.values())
    assert smtp.received == []


async def test_session_lost_midway_keeps_what_was_sent(smtp: RecordingSMTP) -> None:
    await session_lost_midway_keeps_what_was_sent(smtp, channel_for(smtp.port))


async def test_421_greeting_fails_the_batch(smtp: RecordingSMTP) -> None:
    smtp.unavailable_for(30)
    channel = channel_for(smtp.port)
    message = make_message()
    with pytest.raises(RetryableError, match="421"):
        await channel.deliver(message, channel.render(message), recipients("a@example.org"), {})


class ScriptedRelay(asyncio.Protocol):
    """A relay that answers, like Postfix, every command of a pipelined group in one write."""

    chunks: list[bytes]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.pending = b""
        self.in_data = False
        self.accepted = 0
        self.recipients = 0
        transport.write(b"220 relay.test ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.pending += data
        replies = b""
        while True:
            if self.in_data:
                end = (b"\r\n" + self.pending).find(b"\r\n.\r\n")  # the content starts a line
                if end < 0:
                    break
                self.pending = self.pending[end + 3 :]
                self.in_data = False
                self.accepted += 1
                replies += b"250 2.0.0 queued as Q%d\r\n" % self.accepted
                continue
            line, sep, rest = self.pending.partition(b"\r\n")
            if not sep:
                break
            self.pending = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                replies += b"250-relay.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
            elif verb == b"RCPT" and b"gone@" in line:
                replies += b"550 5.1.1 no such user\r\n"
            elif verb == b"RCPT":
                self.recipients += 1
                replies += b"250 2.1.5 ok\r\n"
            elif verb == b"DATA" and not self.recipients:
                replies += b"554 5.5.1 no valid recipients\r\n"
            elif verb == b"DATA":
                replies += b"354 go ahead\r\n"
                self.in_data = True
                self.recipients = 0
            elif verb == b"RSET":
                self.recipients = 0
                replies += b"250 2.0.0 ok\r\n"
            elif verb == b"QUIT":
                replies += b"221 bye\r\n"
            else:
                replies += b"250 2.1.0 ok\r\n"
        if replies:
            self.transport.write(replies)


@contextlib.asynccontextmanager
async def scripted_relay() -> AsyncIterator[tuple[int, list[bytes]]]:
    chunks: list[bytes] = []

    def factory() -> ScriptedRelay:
        relay = ScriptedRelay()
        relay.chunks = chunks
        return relay

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], chunks
    finally:
        server.close()
        await server.wait_closed()


async def test_replies_that_arrive_together_are_all_read_and_commands_go_out_together() -> None:
    message = make_message()
    people = recipients(*(f"user{n}@example.org" for n in range(20)), "gone@example.org", "last@example.org")
    reported: list[int] = []
    async with scripted_relay() as (port, chunks):
        channel = channel_for(port)

        def record(delivery_id: int, outcome: Any) -> asyncio.Future[None]:
            reported.append(delivery_id)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        with reporting(Progress(record)):
            outcomes = await asyncio.wait_for(channel.deliver(message, channel.render(message), people, {}), 10)

    assert [type(outcomes[p.delivery_id]) for p in people] == [Sent] * 20 + [PermanentError, Sent]
    assert reported == [p.delivery_id for p in people if p.address != "gone@example.org"]
    together = [c for c in chunks if b"MAIL FROM:" in c and b"RCPT TO:" in c and b"DATA\r\n" in c]
    assert len(together) >= 20  # each mail's envelope in one write (after the previous mail's content)


async def test_a_mail_goes_only_once_the_previous_outcome_is_in_the_ledger() -> None:
    message = make_message()
    people = recipients("a@example.org", "b@example.org", "c@example.org")
    writes: list[asyncio.Future[None]] = []
    loop = asyncio.get_running_loop()

    def record(delivery_id: int, outcome: Any) -> asyncio.Future[None]:
        writes.append(loop.create_future())  # the ledger write, completed by the test
        return writes[-1]

    async with scripted_relay() as (port, chunks):
        channel = channel_for(port)

        def contents() -> int:
            return b"".join(chunks).count(b"\r\n.\r\n")

        with reporting(Progress(record)):
            sending = asyncio.create_task(channel.deliver(message, channel.render(message), people, {}))
            for step in range(3):
                await asyncio.sleep(0.2)
                assert (contents(), len(writes)) == (step + 1, step + 1)  # one mail on, waiting for its write
                writes[-1].set_result(None)
            outcomes = await asyncio.wait_for(sending, 5)
    assert all(isinstance(o, Sent) for o in outcomes.values())
