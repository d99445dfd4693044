"""The console in the commander's language, and an update composed with its translations: a tab
per offered language, each language's preview (SMS segments in its own encoding), the translation
stored with the update, and the preview token covering it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import updates
from broadcaster.runtime import Runtime
from tests.conftest import make_settings
from tests.integration.test_console import form, login, preview

FRENCH = {"translation.fr.title": "Paiement en panne", "translation.fr.message": "Nous enquêtons sur les échecs."}


@pytest.fixture
def settings(database_url: str, clean_database: None) -> Settings:
    """Email and SMS enabled (nothing is sent: these tests only preview and record)."""
    return make_settings(
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=9,
        email_from="status@example.com",
        twilio_base_url="http://127.0.0.1:9",
        twilio_account_sid="AC00000000000000000000000000000000",
        twilio_auth_token="token",
        twilio_from="+15005550006",
    )


async def test_compose_offers_a_tab_per_other_offered_language(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await login(client, runtime, "ic", "commander")
    page = (await client.get("/console/compose")).text
    tabs = re.findall(r'class="translation-tab" href="#translation-([\w-]+)"', page)
    assert tabs == ["de", "es", "fr"], "every offered language but the default, in the settings' order"
    for code in tabs:
        assert f'name="translation.{code}.title"' in page and f'name="translation.{code}.message"' in page
    assert 'name="translation.en.message"' not in page


async def test_a_french_translation_is_previewed_and_stored(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    csrf = await login(client, runtime, "ic", "commander")
    data: dict[str, Any] = form(csrf, channels=["email", "sms", "webhook"], **FRENCH)
    previewed = await preview(client, csrf, data)
    assert set(previewed["translations"]) == {"fr"}, "only the languages that have a translation"
    french = previewed["translations"]["fr"]
    assert "Paiement en panne" in french["email"]["subject"]
    assert "Nous enquêtons sur les échecs." in french["sms"]["text"]
    assert french["sms"]["encoding"] == "UCS-2" and previewed["renditions"]["sms"]["encoding"] == "GSM-7"
    assert "Checkout failing" in previewed["renditions"]["email"]["subject"]
    assert 'data-language="fr"' in previewed["html"] and "Nous enquêtons sur les échecs." in previewed["html"]
    assert "UCS-2" in previewed["html"]

    edited = {**data, "translation.fr.message": "Autre chose.", "preview_token": previewed["token"]}
    refused = await client.post("/console/send", data=edited)
    assert refused.status_code == 409, "the token covers the translations"

    sent = await client.post("/console/send", data={**data, "preview_token": previewed["token"]})
    assert sent.status_code == 303, sent.text
    update_id = sent.headers["location"].rsplit("/", 1)[1]
    async with runtime.engine.connect() as conn:
        incident_id = (await conn.execute(select(updates.c.incident_id).where(updates.c.id == update_id))).scalar()
    incident = (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth)).json()
    assert incident["updates"][0]["translations"] == {
        "fr": {"title": "Paiement en panne", "message": "Nous enquêtons sur les échecs."}
    }


async def test_the_no_javascript_preview_shows_each_language(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "ic", "commander")
    page = await client.post("/console/compose", data=form(csrf, channels=["email", "sms"], **FRENCH))
    assert page.status_code == 200
    assert 'id="previews-fr"' in page.text and 'data-channel="sms" data-language="fr"' in page.text
    assert 'value="Paiement en panne"' in page.text, "the translation is shown again in its tab"
    unknown = await client.post("/console/compose", data=form(csrf, **{"translation.xx.message": "?"}))
    assert "translations.xx" in unknown.text


async def test_the_console_speaks_german_when_asked(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await login(client, runtime, "ic", "commander")
    english = (await client.get("/console")).text
    assert '<html lang="en">' in english and ">Dashboard</a>" in english and "Log out" in english
    german = await client.get("/console?lang=de")
    assert german.headers["content-language"] == "de"
    assert '<html lang="de">' in german.text and ">Übersicht</a>" in german.text and "Abmelden" in german.text
    assert "Offene Vorfälle und Wartungen" in german.text and "Incident-Leitung" in german.text
    compose = (await client.get("/console/compose")).text  # the cookie keeps the choice
    assert "Übersetzungen" in compose and "An alle Kanäle senden" in compose
    assert (await client.get("/login?lang=fr")).text.count("Mot de passe") == 1
