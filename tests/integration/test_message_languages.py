"""Every reader in their own language, end to end: subscribers in English and in French, updates
posted through the API (one with a French translation, one without), a real worker run against
the local SMTP server and the local Twilio; and ``posting.preview(language="fr")`` is what the
French subscriber received, mail and SMS alike."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import pytest_asyncio
from markupsafe import escape
from sqlalchemy import update

from broadcaster import posting
from broadcaster.actors import Actor
from broadcaster.db import subscribers
from broadcaster.domain import incidents
from broadcaster.post_requests import request_from_body
from channels.base import Rendition
from tests.conftest import run_worker
from tests.support.all_channels import _READERS, Providers, Stack, all_providers, app_stack

EN_MAIL, FR_MAIL = "en@example.org", "fr@example.org"
EN_PHONE, FR_PHONE = "+14155550100", "+14155550101"
NOTE_FR = "Cette mise à jour n'est pas encore disponible en français ; la voici en anglais."
FIRST = {
    "title": "Checkout errors",
    "status": "investigating",
    "impact": "major",
    "message": "We are investigating failed payments at checkout.",
    "translations": {"fr": {"title": "Erreurs au paiement", "message": "Nous enquêtons sur des paiements refusés."}},
    "channels": ["email", "sms"],
}
SECOND = {"status": "identified", "message": "A faulty deploy; we are rolling it back.", "channels": ["email", "sms"]}


@dataclass
class Sent:
    """What one update's post sent, per reader, and what the preview in French showed before it."""

    incident_id: str
    update_id: str
    mails: dict[str, EmailMessage]  # by address
    sms: dict[str, str]  # body by phone
    preview_fr: dict[str, Rendition]
    sent_fr: dict[str, Any]  # the French reader's email and SMS as renditions, read back from the providers


class Clock:
    """The moment an update is stamped with, so a preview and its post carry the same one."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def played(database_url: str) -> AsyncIterator[dict[str, Sent]]:
    """Both updates, previewed in French, posted and delivered once for every test of the module."""
    clock = Clock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(incidents, "utcnow", clock)  # the updates' stamp only: what is sent is the channels' own
        async with (
            all_providers() as providers,
            app_stack(providers.settings(database_url, channels=["email", "sms"])) as stack,
        ):
            for channel, address in (("email", EN_MAIL), ("email", FR_MAIL), ("sms", EN_PHONE), ("sms", FR_PHONE)):
                await stack.subscribe(channel, address)
            async with stack.runtime.engine.begin() as conn:
                french = subscribers.c.address.in_([FR_MAIL, FR_PHONE])
                await conn.execute(update(subscribers).where(french).values(language="fr"))
            first = await play(stack, providers, FIRST, None)
            clock.now += timedelta(minutes=20)
            second = await play(stack, providers, SECOND, first.incident_id)
            yield {"first": first, "second": second}


async def play(stack: Stack, providers: Providers, body: dict[str, Any], incident_id: str | None) -> Sent:
    """Preview ``body`` in French, post it through the API, run the worker; what reached whom."""
    actor = Actor.system("test")
    preview = await posting.preview(stack.runtime, request_from_body(body, incident_id), actor=actor, language="fr")
    mark = providers.mark()
    path = f"/api/v1/incidents/{incident_id}/updates" if incident_id else "/api/v1/incidents"
    response = await stack.client.post(path, headers=stack.auth, json=body)
    assert response.status_code == 201, response.text
    posted = response.json() if incident_id else response.json()["update"]
    await run_worker(stack.settings)
    mails = providers.smtp.received[mark["email"] :]
    texts = providers.twilio.messages[mark["sms"] :]
    incident_url = f"{stack.settings.public_url}/incidents/{posted['incident_id']}"
    french_mail = next(m for m in mails if FR_MAIL in m.rcpt_tos)
    french_sms = next(m for m in texts if m["to"] == FR_PHONE)
    return Sent(
        incident_id=posted["incident_id"],
        update_id=posted["id"],
        mails={address: m.message for m in mails for address in m.rcpt_tos},
        sms={str(m["to"]): str(m["body"]) for m in texts},
        preview_fr=preview,
        sent_fr={
            "email": _READERS["email"](french_mail, stack.settings, incident_url),
            "sms": _READERS["sms"](french_sms, stack.settings, incident_url),
        },
    )


def text_of(mail: EmailMessage, kind: str = "plain") -> str:
    part = mail.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


def test_with_a_translation_each_reader_gets_their_language(played: dict[str, Sent]) -> None:
    sent = played["first"]
    english, french = sent.mails[EN_MAIL], sent.mails[FR_MAIL]
    assert english["Subject"] == "[Investigating] Checkout errors"
    assert english["Content-Language"] == "en" and '<html lang="en">' in text_of(english, "html")
    assert "We are investigating failed payments at checkout." in text_of(english)
    assert "You receive this email because" in text_of(english) and NOTE_FR not in text_of(english)

    assert french["Subject"] == "[Enquête en cours] Erreurs au paiement"
    assert french["Content-Language"] == "fr" and '<html lang="fr">' in text_of(french, "html")
    body = text_of(french)
    assert "Nous enquêtons sur des paiements refusés." in body and "We are investigating" not in body
    assert "Vous recevez cet e-mail parce que vous êtes abonné" in body and NOTE_FR not in body

    url = f"http://status.test/incidents/{sent.incident_id}"
    assert (
        sent.sms[EN_PHONE]
        == f"[Investigating] Checkout errors: We are investigating failed payments at checkout. {url}"
    )
    assert (
        sent.sms[FR_PHONE] == f"[Enquête en cours] Erreurs au paiement: Nous enquêtons sur des paiements refusés. {url}"
    )


def test_without_a_translation_the_french_reader_gets_english_with_a_note(played: dict[str, Sent]) -> None:
    sent = played["second"]
    english, french = sent.mails[EN_MAIL], sent.mails[FR_MAIL]
    assert english["Subject"] == "[Identified] Checkout errors"
    assert NOTE_FR not in text_of(english)

    # The text in English, said so first, in French; the title the first update gave in French stays.
    assert french["Subject"] == "[Cause identifiée] Erreurs au paiement"
    assert french["Content-Language"] == "fr"
    body = text_of(french)
    assert body.index(NOTE_FR) < body.index("A faulty deploy; we are rolling it back.")
    assert body.index(NOTE_FR) < body.index("Cause identifiée")
    assert str(escape(NOTE_FR)) in text_of(french, "html")

    url = f"http://status.test/incidents/{sent.incident_id}"
    assert sent.sms[EN_PHONE] == f"[Identified] Checkout errors: A faulty deploy; we are rolling it back. {url}"
    # The whole note would leave two UCS-2 segments no room for the status: the short one stands in.
    assert sent.sms[FR_PHONE] == (
        f"En anglais : [Cause identifiée] Erreurs au paiement: A faulty deploy; we are rolling it back. {url}"
    )


@pytest.mark.parametrize("step", ["first", "second"])
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_the_french_preview_is_what_the_french_reader_received(
    played: dict[str, Sent], step: str, channel: str
) -> None:
    sent = played[step]
    preview = normalised(sent.preview_fr, sent)[channel]
    assert preview == sent.sent_fr[channel]


def normalised(preview: dict[str, Rendition], sent: Sent) -> dict[str, Any]:
    """The preview with its dry run's stand-in ids made the post's, and the mail's recipient
    placeholders filled in for the French subscriber (the clock is the same for both)."""
    incident = re.search(r"/incidents/([\w-]+)", str(preview["sms"]["text"]))
    update = re.search(r"<u\.([\w-]+)\.", str(preview["email"]["headers"]["Message-ID"]))
    assert incident, preview["sms"]
    rules = {f"/incidents/{incident.group(1)}": f"/incidents/{sent.incident_id}"}
    rules[f"<i.{incident.group(1)}."] = f"<i.{sent.incident_id}."
    if update:
        rules[f"<u.{update.group(1)}."] = f"<u.{sent.update_id}."
    message_id = str(sent.mails[FR_MAIL]["Message-ID"])  # <i|u.{id}.{subscriber}@domain>
    rules |= {"{{address}}": FR_MAIL, "{{subscriber_id}}": message_id.split("@")[0].rsplit(".", 1)[1]}
    return dict(replaced(preview, rules))


def replaced(value: Any, rules: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: replaced(v, rules) for k, v in value.items()}
    if isinstance(value, str):
        for old, new in rules.items():
            value = value.replace(old, new)
    return value
