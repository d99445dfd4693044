"""What the email channel puts on the wire: DATA content stuffed once, the envelope as sendmail sends it."""

from __future__ import annotations

from collections.abc import Iterator

import aiosmtplib
import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import Recipient, Sent
from channels.email import EmailChannel, smtp_data, transmit
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.support.factories import make_message


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b".top\r\n.\r\nmid\r\n..two\r\n", b"..top\r\n..\r\nmid\r\n...two\r\n.\r\n"),
        (b"no end", b"no end\r\n.\r\n"),
        (b"bare\nlf\rcr\r\n.x", b"bare\r\nlf\r\ncr\r\n..x\r\n.\r\n"),
        (b"\n.after bare lf\r\n", b"\r\n..after bare lf\r\n.\r\n"),
        (b"", b"\r\n.\r\n"),
    ],
)
def test_smtp_data_normalises_line_ends_and_stuffs_periods(data: bytes, wire: bytes) -> None:
    assert smtp_data(data) == wire


def recipient(n: int, address: str) -> Recipient:
    return Recipient(
        delivery_id=n,
        subscriber_id=f"sub{n}",
        address=address,
        unsubscribe_url=f"https://status.example.com/unsubscribe?token=t{n}",
        manage_url=f"https://status.example.com/subscriptions?token=t{n}",
    )


async def test_mail_arrives_byte_for_byte_with_lines_that_start_with_a_period(smtp: RecordingSMTP) -> None:
    channel = EmailChannel(Settings(**smtp.settings(page_name="Example Status")))
    text = ".hidden first line\n.\n..two periods\nWe are investigating. Next update in 30 minutes."
    message = make_message(body_text=text, body_markdown=text, body_html="<p>" + text.replace("\n", "<br>\n") + "</p>")
    rendition = channel.render(message)
    people = [recipient(1, "alice@example.org"), recipient(2, "bob@example.net")]

    outcomes = await channel.deliver(message, rendition, people, {})

    assert all(isinstance(outcomes[p.delivery_id], Sent) for p in people)
    for person, received in zip(people, smtp.received, strict=True):
        address, data, _message_id = channel.message_bytes(rendition, person)
        assert received.rcpt_tos == (address,)
        assert received.mail_from == "status@example.com"
        assert b"\r\n.hidden first line\r\n" in data and b"\r\n..two periods" in data  # to be stuffed
        assert received.data.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
        body = received.message.get_body(("plain",))
        assert body is not None
        assert ".hidden first line\n.\n..two periods\n" in body.get_content().replace("\r\n", "\n")


async def test_transmit_matches_sendmail_envelope_and_refusals(smtp: RecordingSMTP) -> None:
    smtp.refuse("gone@example.org")
    data = b"Subject: hi\r\n\r\n.line\r\n"
    content = smtp_data(data)
    client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port)
    await client.connect()
    try:
        await transmit(client, b"FROM:<status@example.com>", "alice@example.org", content)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await transmit(client, b"FROM:<status@example.com>", "gone@example.org", content)
        assert refused.value.code == 550
        await client.sendmail("status@example.com", ["bob@example.org"], data)  # the envelope was reset
    finally:
        await client.quit()
    first, second = smtp.received
    assert first.data == second.data
    assert (first.mail_from, first.rcpt_tos) == ("status@example.com", ("alice@example.org",))
    assert second.rcpt_tos == ("bob@example.org",)


@pytest.mark.parametrize(
    "text",
    [
        ".{{manage_url}}\n{{unsubscribe_url}}\n.after a value\n..two\n.\n",
        "{{unsubscribe_url}}{{manage_url}}.x\n" + "." * 200 + "\n",
        "no period at all {{manage_url}}\n",
    ],
)
@pytest.mark.parametrize("url", ["https://status.example.com/u?token=t1", ".starts-with-a-period", "." * 120])
def test_wire_form_stuffed_at_compile_time_equals_stuffing_each_mail(text: str, url: str) -> None:
    channel = EmailChannel(Settings(smtp_host="127.0.0.1", email_from="status@example.com"))
    rendition = channel.render(make_message())
    rendition = {**rendition, "text": text, "html": "<p>" + text + "</p>"}
    person = Recipient(
        delivery_id=1, subscriber_id="s1", address="a@example.org", unsubscribe_url=url, manage_url=url + "/m"
    )
    compiled = channel._compile(rendition)
    _address, data, _id = channel._personalize(compiled, person)
    _address, wire, _id = channel._personalize(compiled, person, wire=True)
    assert wire == smtp_data(data)
