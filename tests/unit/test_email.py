"""The email channel without a network: rendering, the bytes it sends, how SMTP answers map."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import ChannelContext, Recipient
from broadcaster.errors import ConfigError, PermanentError, RetryableError
from broadcaster.message import ComponentChange
from channels.email import EmailChannel, deliver_error
from tests.support.factories import make_message

UNSUBSCRIBE = "https://status.example.com/unsubscribe?token="
MANAGE = "https://status.example.com/subscriptions?token="


def channel(**overrides: Any) -> EmailChannel:
    fields: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "email_from": "status@example.com",
        "page_name": "Example Status",
    }
    return EmailChannel(Settings(**(fields | overrides)))


def recipient(n: int, address: str | None = None, **overrides: Any) -> Recipient:
    fields: dict[str, Any] = dict(
        delivery_id=n,
        subscriber_id=f"sub{n:04d}",
        address=address or f"user{n}@example.org",
        unsubscribe_url=f"{UNSUBSCRIBE}tok{n:04d}x",
        manage_url=f"{MANAGE}mng{n:04d}x",
    )
    return Recipient(**(fields | overrides))


def sent_bytes(message_fields: dict[str, Any] | None = None, who: Recipient | None = None) -> bytes:
    email_channel = channel()
    rendition = email_channel.render(make_message(**(message_fields or {})))
    return email_channel.message_bytes(rendition, who or recipient(1))[1]


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def header_block(data: bytes) -> bytes:
    return data.partition(b"\r\n\r\n")[0]


# settings ----------------------------------------------------------------------------------


def test_disabled_without_settings() -> None:
    assert EmailChannel.from_settings(Settings(), ChannelContext()) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"smtp_host": "mail.example.com"},
        {"email_from": "status@example.com"},
        {"smtp_host": "mail.example.com", "email_from": "not an address"},
        {"smtp_host": "mail.example.com", "email_from": "status@example.com", "smtp_username": "u"},
    ],
)
def test_half_configured_is_a_config_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EmailChannel.from_settings(Settings(**fields), ChannelContext())


def test_from_uses_the_configured_name_or_the_page_name() -> None:
    assert channel().from_header == "Example Status <status@example.com>"
    assert channel(email_from="Acme Ops <ops@acme.example>").from_header == "Acme Ops <ops@acme.example>"
    assert channel(email_from="ops@acme.example").domain == "acme.example"


# rendition ---------------------------------------------------------------------------------


def test_rendition_is_json_and_shows_placeholders() -> None:
    rendition = channel().render(make_message(next_update_at=datetime(2026, 11, 23, 10, 35, tzinfo=UTC)))
    assert set(rendition) == {"subject", "text", "html", "headers"}
    json.dumps(rendition)
    assert rendition["subject"] == "[Investigating] Elevated API error rates"
    headers = rendition["headers"]
    assert headers["To"] == "{{address}}"
    assert headers["From"] == "Example Status <status@example.com>"
    assert headers["List-Unsubscribe"] == ("<{{unsubscribe_url}}>, <mailto:status@example.com?subject=unsubscribe>")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Auto-Submitted"] == "auto-generated"
    assert headers["Date"] == "Mon, 23 Nov 2026 10:05:00 +0000"
    for part in ("text", "html"):
        body = rendition[part]
        for fact in (
            "Elevated API error rates",
            "Investigating",
            "API",
            "Partial outage",
            "https://status.example.com/incidents/inc000000001",
            "2026-11-23 10:35 UTC",
            "{{unsubscribe_url}}",
            "{{manage_url}}",
        ):
            assert fact in body, (part, fact)
    assert "<strong>elevated error rates</strong>" in rendition["html"]
    assert "<style" not in rendition["html"]


def test_first_update_is_the_thread_root_later_ones_reply_to_it() -> None:
    first = channel().render(make_message())["headers"]
    assert first["Message-ID"] == "<i.inc000000001.{{subscriber_id}}@example.com>"
    assert "In-Reply-To" not in first and "References" not in first
    later = channel().render(make_message(update_id="upd000000002", update_number=2))["headers"]
    assert later["Message-ID"] == "<u.upd000000002.{{subscriber_id}}@example.com>"
    assert later["In-Reply-To"] == later["References"] == first["Message-ID"]


def test_drill_is_marked_in_subject_and_body() -> None:
    rendition = channel().render(make_message(drill=True))
    assert rendition["subject"].startswith("[DRILL] ")
    assert "DRILL" in rendition["text"].splitlines()[0]
    assert "<strong>DRILL</strong>" in rendition["html"]


def test_closing_update_drops_the_next_update_line() -> None:
    rendition = channel().render(
        make_message(
            status="resolved",
            next_update_at=datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
            components=(ComponentChange("c1", "API", "operational", "partial_outage"),),
        )
    )
    assert "Next update by" not in rendition["text"]
    assert "Operational (was partial outage)" in rendition["text"]


def test_confirmation_mail_carries_the_link_in_both_parts() -> None:
    confirmation = channel().render_confirmation(
        "https://status.example.com/subscriptions/confirm?token=a&b=1", components=["API", "Dashboard"]
    )
    assert confirmation["subject"] == "Confirm your subscription to Example Status"
    assert "https://status.example.com/subscriptions/confirm?token=a&b=1" in confirmation["text"]
    assert 'href="https://status.example.com/subscriptions/confirm?token=a&amp;b=1"' in confirmation["html"]
    assert "API, Dashboard" in confirmation["text"]


# the bytes sent ----------------------------------------------------------------------------


def test_mail_parses_as_multipart_alternative_with_every_header() -> None:
    data = sent_bytes({"update_id": "upd000000002", "update_number": 2})
    parsed = parse(data)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert all(not part.defects for part in parsed.walk())
    assert all(part.get_content_charset() == "utf-8" for part in parsed.iter_parts())
    assert parsed["From"] == "Example Status <status@example.com>"
    assert parsed["To"] == "user1@example.org"
    assert parsed["Subject"] == "[Investigating] Elevated API error rates"
    assert parsed["Message-ID"] == "<u.upd000000002.sub0001@example.com>"
    assert parsed["In-Reply-To"] == parsed["References"] == "<i.inc000000001.sub0001@example.com>"
    assert parsed["List-Unsubscribe"] == (f"<{UNSUBSCRIBE}tok0001x>, <mailto:status@example.com?subject=unsubscribe>")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"].datetime == datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
    assert data.isascii()
    assert all(len(line) <= 76 for line in data.partition(b"\r\n\r\n")[2].split(b"\r\n"))


def test_text_part_decodes_to_the_rendition_with_this_recipients_links() -> None:
    email_channel = channel()
    rendition = email_channel.render(make_message(body_text="Ünïcödé = fine.\n" + "long line " * 40))
    who = recipient(7, unsubscribe_url=UNSUBSCRIBE + "x" * 120 + "&a=b")
    _, data, message_id = email_channel.message_bytes(rendition, who)
    text = parse(data).get_body(("plain",))
    assert text is not None
    expected = (
        rendition["text"].replace("{{unsubscribe_url}}", who.unsubscribe_url).replace("{{manage_url}}", who.manage_url)
    )
    assert text.get_content().replace("\r\n", "\n") == expected
    html_part = parse(data).get_body(("html",))
    assert html_part is not None
    assert f'href="{who.unsubscribe_url.replace("&", "&amp;")}"' in html_part.get_content()
    assert message_id == "<i.inc000000001.sub0007@example.com>"


def test_each_recipient_gets_only_their_own_values() -> None:
    email_channel = channel()
    rendition = email_channel.render(make_message())
    alice, bob = recipient(1, "alice@example.org"), recipient(2, "bob@example.net")
    mails = {who: email_channel.message_bytes(rendition, who)[1] for who in (alice, bob)}
    for who, other in ((alice, bob), (bob, alice)):
        data, parsed = mails[who], parse(mails[who])
        assert parsed["To"] == who.address
        assert parsed["Message-ID"] == f"<i.inc000000001.{who.subscriber_id}@example.com>"
        assert parsed["List-Unsubscribe"].startswith(f"<{who.unsubscribe_url}>")
        for part in ("plain", "html"):
            body = parsed.get_body((part,))
            assert body is not None
            content = body.get_content()
            assert who.unsubscribe_url in content and who.manage_url in content
            assert "{{" not in content
        n = other.delivery_id
        for leak in (other.address, other.subscriber_id, f"tok{n:04d}x", f"mng{n:04d}x"):
            assert leak.encode() not in data


def test_crlf_in_the_title_cannot_add_a_header() -> None:
    data = sent_bytes({"incident_title": "Outage\r\nBcc: victim@evil.example\r\n\r\nbody"})
    parsed = parse(data)
    assert parsed["Bcc"] is None
    assert not any(line.lower().startswith(b"bcc:") for line in header_block(data).split(b"\r\n"))
    assert parsed["Subject"] == "[Investigating] Outage Bcc: victim@evil.example body"


def test_crlf_in_recipient_values_cannot_add_a_header() -> None:
    email_channel = channel()
    rendition = email_channel.render(make_message())
    evil = recipient(
        3, unsubscribe_url="https://x.example/u?t=1>\r\nBcc: victim@evil.example", subscriber_id="a\r\nBcc: x@y"
    )
    data = email_channel.message_bytes(rendition, evil)[1]
    assert parse(data)["Bcc"] is None
    assert not any(line.lower().startswith(b"bcc:") for line in header_block(data).split(b"\r\n"))
    with pytest.raises(PermanentError):
        email_channel.message_bytes(rendition, recipient(4, "user@example.org\r\nBcc: victim@evil.example"))


def test_non_ascii_subject_and_sender_are_rfc2047_encoded() -> None:
    email_channel = channel(email_from="Statut Café <statut@example.fr>")
    title = "Panne de l'API de paiement: les cartes émises hors zone euro sont refusées 障害"
    rendition = email_channel.render(make_message(incident_title=title))
    data = email_channel.message_bytes(rendition, recipient(1))[1]
    assert header_block(data).isascii()
    assert b"=?utf-8?" in header_block(data)
    parsed = parse(data)
    assert parsed["Subject"] == f"[Investigating] {title}"
    assert parsed["From"].addresses[0].display_name == "Statut Café"
    assert all(len(line) <= 78 for line in header_block(data).split(b"\r\n"))


def test_international_domain_is_idna_encoded_and_utf8_local_part_refused() -> None:
    email_channel = channel()
    rendition = email_channel.render(make_message())
    address, data, _ = email_channel.message_bytes(rendition, recipient(1, "jose@bücher.example"))
    assert address == "jose@xn--bcher-kva.example"
    assert parse(data)["To"] == address
    with pytest.raises(PermanentError):
        email_channel.message_bytes(rendition, recipient(2, "josé@example.org"))


def test_missing_unsubscribe_link_falls_back_to_the_manage_link() -> None:
    email_channel = channel()
    rendition = email_channel.render(make_message())
    data = email_channel.message_bytes(rendition, recipient(1, unsubscribe_url=""))[1]
    assert parse(data)["List-Unsubscribe"].startswith(f"<{MANAGE}mng0001x>")


# SMTP answers ------------------------------------------------------------------------------

CASES: list[tuple[BaseException, type[Exception], bool]] = [
    (
        aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "5.1.1 No such user", "a@b")]),
        PermanentError,
        True,
    ),
    (aiosmtplib.SMTPRecipientRefused(550, "No such user", "a@b"), PermanentError, True),
    (aiosmtplib.SMTPRecipientRefused(551, "User not local", "a@b"), PermanentError, True),
    (aiosmtplib.SMTPRecipientRefused(553, "Mailbox name not allowed", "a@b"), PermanentError, True),
    (aiosmtplib.SMTPRecipientRefused(550, "5.7.1 Relaying denied", "a@b"), PermanentError, False),
    (aiosmtplib.SMTPRecipientRefused(552, "5.2.2 Mailbox full", "a@b"), PermanentError, False),
    (aiosmtplib.SMTPRecipientRefused(550, "5.2.1 Mailbox disabled", "a@b"), PermanentError, True),
    (aiosmtplib.SMTPDataError(554, "5.7.1 Message rejected as spam"), PermanentError, False),
    (aiosmtplib.SMTPDataError(550, "Rejected"), PermanentError, False),
    (aiosmtplib.SMTPRecipientRefused(450, "4.2.0 Mailbox busy", "a@b"), RetryableError, False),
    (aiosmtplib.SMTPDataError(451, "4.3.0 Try later"), RetryableError, False),
    (aiosmtplib.SMTPRecipientRefused(421, "4.3.2 Shutting down", "a@b"), RetryableError, False),
    (aiosmtplib.SMTPSenderRefused(553, "5.7.1 Sender not allowed", "s@x"), RetryableError, False),
    (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Bad credentials"), RetryableError, False),
    (aiosmtplib.SMTPServerDisconnected("Connection lost"), RetryableError, False),
    (aiosmtplib.SMTPConnectError("Connection refused"), RetryableError, False),
    (aiosmtplib.SMTPReadTimeoutError("Timed out"), RetryableError, False),
    (ConnectionRefusedError(111, "Connection refused"), RetryableError, False),
]


@pytest.mark.parametrize(("exc", "expected", "suppress"), CASES, ids=[repr(case[0])[:60] for case in CASES])
def test_smtp_answers_map_to_delivery_errors(exc: BaseException, expected: type[Exception], suppress: bool) -> None:
    error = deliver_error(exc)
    assert type(error) is expected
    assert error.reason
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        assert str(exc.code) in error.reason
    if isinstance(error, PermanentError):
        assert error.suppress_recipient is suppress
