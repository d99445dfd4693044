"""No header injection in email: CR/LF in a title, a name or an address never makes a header."""

from __future__ import annotations

import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import Recipient, Sent
from channels.email import EmailChannel
from sandbox.smtp import recording_smtp
from tests.support.factories import make_message

CLEAN_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "auto-submitted",
    "x-auto-response-suppress",
    "mime-version",
    "content-type",
    "content-language",  # the reader's language (broadcaster.i18n)
}
INJECTIONS = [
    "Outage\r\nBcc: victim@evil.example",
    "Outage\nBcc: victim@evil.example",
    "Outage\rBcc: victim@evil.example",
    "Outage\r\n\r\n<html>body takeover</html>",
    "Outage\u2028Bcc: victim@evil.example",
]


@pytest.mark.parametrize("title", INJECTIONS)
async def test_title_cannot_add_headers_or_recipients(title: str) -> None:
    with recording_smtp() as smtp:
        channel = EmailChannel(Settings(**smtp.settings(page_name="Status\r\nBcc: evil@evil.example")))
        message = make_message(incident_title=title)
        rendition = channel.render(message)
        recipient = Recipient(
            delivery_id=1,
            subscriber_id="s1",
            address="alice@example.org",
            unsubscribe_url="https://status.example.com/u?t=1\r\nBcc: evil@evil.example",
            manage_url="https://status.example.com/m?t=1",
        )
        outcomes = await channel.deliver(message, rendition, [recipient], {})
        await channel.aclose()
    assert isinstance(outcomes[1], Sent)
    assert [r.rcpt_tos for r in smtp.received] == [("alice@example.org",)]
    mail = smtp.messages[0]
    assert mail["Bcc"] is None and mail["Cc"] is None
    # The hostile text stays inside the values it was put in; no header appears that a clean mail lacks.
    assert {k.lower() for k in mail} == CLEAN_HEADERS, dict(mail.items())
    subject = str(mail["Subject"])
    assert "\r" not in subject and "\n" not in subject
    raw_headers = smtp.received[0].data.split(b"\r\n\r\n", 1)[0]
    for line in raw_headers.split(b"\r\n"):
        assert not line.lower().startswith(b"bcc:"), line


async def test_recipient_address_with_crlf_is_refused() -> None:
    with recording_smtp() as smtp:
        channel = EmailChannel(Settings(**smtp.settings()))
        message = make_message()
        recipient = Recipient(
            delivery_id=1, subscriber_id="s1", address="alice@example.org\r\nRCPT TO:<victim@evil.example>"
        )
        outcomes = await channel.deliver(message, channel.render(message), [recipient], {})
        await channel.aclose()
    assert not isinstance(outcomes.get(1), Sent)
    assert all("victim@evil.example" not in r.rcpt_tos for r in smtp.received)
