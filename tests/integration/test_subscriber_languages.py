"""A subscriber's language: chosen on sign-up (form, JSON, admin API, CSV), changed on the manage
page, and the language of their confirmation (a real mail through the local SMTP server)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import subscribers
from broadcaster.delivery.fanout import recipient_links
from broadcaster.importing.subscribers_csv import apply_csv, plan_csv
from broadcaster.jobs.confirmations import sms_code_text, sms_help_text
from broadcaster.runtime import Runtime
from broadcaster.security import LinkSigner
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings, run_worker

LINK = re.compile(r"http://status\.test/subscriptions/confirm\?token=[A-Za-z0-9._-]+")


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
def settings(database_url: str, clean_database: None, smtp: RecordingSMTP) -> Settings:
    return make_settings(database_url, **smtp.settings())


def part(message: EmailMessage, kind: str) -> str:
    body = message.get_body(preferencelist=(kind,))
    assert body is not None
    return str(body.get_content())


async def language_of(runtime: Runtime, address: str) -> str | None:
    async with runtime.engine.connect() as conn:
        query = select(subscribers.c.language).where(subscribers.c.address == address)
        return (await conn.execute(query)).scalar_one()  # type: ignore[no-any-return]


async def test_a_french_sign_up_gets_its_confirmation_in_french(client, settings, smtp, runtime) -> None:
    response = await client.post("/subscribe", json={"email": "amelie@example.org", "language": "fr"})
    assert response.status_code == 202, response.text
    assert response.json()["message"] == "open the link we emailed to confirm", "the JSON stays English"
    await run_worker(settings)
    [mail] = [r.message for r in smtp.received if "amelie@example.org" in r.rcpt_tos]
    assert mail["Subject"] == "Confirmez votre abonnement à Test Status"
    assert mail["Content-Language"] == "fr"
    text, html = part(mail, "plain"), part(mail, "html")
    assert "Quelqu’un, vous sans doute, a demandé à recevoir" in text and "Pour confirmer, ouvrez ce lien" in text
    assert '<html lang="fr">' in html and "Confirmer l’abonnement" in html and "Confirm your" not in text
    link = LINK.search(text)
    assert link
    confirmed = await client.get(link.group(0))
    assert confirmed.status_code == 200 and "Vous êtes abonné" in confirmed.text
    assert confirmed.headers["content-language"] == "fr"
    assert await language_of(runtime, "amelie@example.org") == "fr"


async def test_languages_are_normalized_bad_ones_named_and_a_new_sign_up_changes_it(client, auth, runtime) -> None:
    bad = await client.post("/subscribe", json={"email": "x@example.org", "language": "tlh"})
    assert bad.status_code == 422 and list(bad.json()["error"]["fields"]) == ["language"]
    bad = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": "x@example.org", "language": "xx"}
    )
    assert bad.status_code == 422 and list(bad.json()["error"]["fields"]) == ["language"]
    form = await client.post(
        "/subscribe", data={"email": "x@example.org", "language": "xx"}, headers={"Accept-Language": "de"}
    )
    assert form.status_code == 422 and "Wählen Sie eine der Sprachen aus der Liste." in form.text

    await client.post("/subscribe", json={"email": "yves@example.org", "language": "fr-CA"})
    assert await language_of(runtime, "yves@example.org") == "fr"
    await client.post("/subscribe", data={"email": "yves@example.org", "language": "ES"})  # still unconfirmed
    assert await language_of(runtime, "yves@example.org") == "es"
    await client.post("/subscribe", json={"email": "udo@example.org"}, headers={"Accept-Language": "de-AT, en;q=0.5"})
    assert await language_of(runtime, "udo@example.org") == "de", "default: the reader's language"

    made = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": "ad@example.org", "language": "DE"}
    )
    assert made.status_code == 201 and made.json()["language"] == "de"
    kept = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": "ad@example.org"}
    )
    assert kept.status_code == 200 and kept.json()["language"] == "de", "left out: kept"
    cleared = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": "ad@example.org", "language": None}
    )
    assert cleared.json()["language"] is None
    listed = (await client.get("/api/v1/subscribers", headers=auth)).json()["subscribers"]
    assert {s["address"]: s["language"] for s in listed}["udo@example.org"] == "de"


async def test_the_form_offers_the_languages_in_the_readers_own(client) -> None:
    page = await client.get("/subscribe", headers={"Accept-Language": "es"})
    assert page.status_code == 200 and '<html lang="es">' in page.text and "Idioma de sus mensajes" in page.text
    assert '<option value="es" lang="es" selected>Español</option>' in page.text
    assert '<option value="de" lang="de">Deutsch</option>' in page.text
    wrong = await client.post("/subscribe", data={"email": "not-an-address"}, headers={"Accept-Language": "fr"})
    assert wrong.status_code == 422 and "adresse e-mail non valide" in wrong.text


async def test_csv_keeps_the_language_and_names_a_bad_one(client, auth, runtime) -> None:
    for address, language in (("de@example.org", "de"), ("none@example.org", None)):
        body = {"channel": "email", "address": address, "confirmed": True, "language": language}
        assert (await client.post("/api/v1/subscribers", headers=auth, json=body)).status_code == 201
    exported = (await client.get("/api/v1/subscribers.csv", headers=auth)).text
    assert "email,de@example.org,,de,true," in exported and "email,none@example.org,,,true," in exported
    async with runtime.engine.begin() as conn:
        await conn.execute(subscribers.delete())
        plan = await plan_csv(conn, exported, confirmed=False, allow_private_webhooks=True)
        await apply_csv(conn, plan, allow_private_webhooks=True)
    assert await language_of(runtime, "de@example.org") == "de"
    assert await language_of(runtime, "none@example.org") is None

    text = "channel,address,language\nemail,ok@example.org,FR\nemail,bad@example.org,klingon\n"
    async with runtime.engine.connect() as conn:
        plan = await plan_csv(conn, text, confirmed=True, allow_private_webhooks=True, languages=("en", "fr"))
    assert plan.errors == [(3, "language: 'klingon' is not offered here (offered: en, fr)")]
    assert plan.rows[0].data.language == "fr"


async def test_the_manage_page_speaks_and_changes_the_language(client, auth, settings, runtime) -> None:
    body = {"channel": "email", "address": "fr@example.org", "confirmed": True, "language": "fr"}
    sid = (await client.post("/api/v1/subscribers", headers=auth, json=body)).json()["id"]
    _, manage_url = recipient_links(settings, LinkSigner(settings.secret_key.get_secret_value()), sid)
    page = await client.get(manage_url, headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Votre abonnement" in page.text and page.headers["content-language"] == "fr"
    assert '<option value="fr" lang="fr" selected>Français</option>' in page.text
    asked = await client.get(f"{manage_url}&lang=de")
    assert "Ihr Abonnement" in asked.text and asked.headers["content-language"] == "de"

    token = manage_url.split("token=", 1)[1]
    saved = await client.post("/subscriptions/manage", data={"token": token, "action": "save", "language": "es"})
    assert saved.status_code == 200 and "Guardado." in saved.text and saved.headers["content-language"] == "es"
    assert await language_of(runtime, "fr@example.org") == "es"
    bad = await client.post("/subscriptions/manage", data={"token": token, "action": "save", "language": "xx"})
    assert bad.status_code == 422 and "Elija uno de los idiomas de la lista." in bad.text
    as_json = await client.post(
        "/subscriptions/manage", json={"token": token, "language": "xx"}, headers={"Accept": "application/json"}
    )
    assert as_json.status_code == 422 and list(as_json.json()["error"]["fields"]) == ["language"]
    assert await language_of(runtime, "fr@example.org") == "es"


def test_sms_code_and_help_in_the_subscribers_language(settings: Settings) -> None:
    assert sms_code_text(settings, "123456", "de").startswith(
        "Ihr Code für die Statusmeldungen von Test Status lautet 123456."
    )
    assert sms_code_text(settings, "123456", None).startswith("Your Test Status status alerts code is 123456.")
    assert "Répondez STOP" in sms_help_text(settings, "fr")
    assert sms_help_text(settings, "tlh") == sms_help_text(settings, None), "a language not offered: the default"
