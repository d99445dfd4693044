"""The public page in the reader's language: Accept-Language, ?lang= kept in a cookie, translated
updates; the v2 JSON the same bytes whatever the reader asks for."""

from __future__ import annotations

import re
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from broadcaster.runtime import Runtime
from status_page.app import create_app
from status_page.languages import LANG_COOKIE
from tests.conftest import make_settings

INCIDENT = {
    "title": "Login errors",
    "status": "investigating",
    "message": "We are looking into failed logins.",
    "translations": {"fr": {"title": "Erreurs de connexion", "message": "Nous examinons les échecs de connexion."}},
}


async def post_incident(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    created = await client.post("/api/v1/incidents", headers=auth, json=INCIDENT)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_accept_language_and_lang_kept_in_a_cookie(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await post_incident(client, auth)
    summary = (await client.get("/api/v2/summary.json")).content

    german = await client.get("/", headers={"Accept-Language": "de-CH, de;q=0.9, en;q=0.5"})
    assert german.status_code == 200
    assert '<html lang="de">' in german.text and "Aktuelle Störungen" in german.text
    assert 'data-text-your-time="Ihre Zeit"' in german.text, "the live script's words come in the page's language"
    assert german.headers["content-language"] == "de"
    assert "Accept-Language" in german.headers["vary"] and "Cookie" in german.headers["vary"]
    english = await client.get("/", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in english.text and "Active incidents" in english.text
    assert english.headers["etag"] != german.headers["etag"]
    again = await client.get("/", headers={"Accept-Language": "de", "If-None-Match": german.headers["etag"]})
    assert again.status_code == 304

    spanish = await client.get("/?lang=es", headers={"Accept-Language": "de"})
    assert '<html lang="es">' in spanish.text and "Incidencias activas" in spanish.text
    assert f"{LANG_COOKIE}=es" in spanish.headers["set-cookie"]
    kept = await client.get("/history", headers={"Accept-Language": "de"})  # the client sends the cookie
    assert '<html lang="es">' in kept.text and "Historial de incidencias" in kept.text
    assert kept.headers["content-language"] == "es"
    assert '<html lang="es">' in (await client.get("/")).text

    for headers, query in (({"Accept-Language": "de"}, ""), ({}, "?lang=fr"), ({"Accept-Language": "es"}, "")):
        assert (await client.get(f"/api/v2/summary.json{query}", headers=headers)).content == summary


async def test_a_translated_update_for_its_readers_and_hreflang(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Any
) -> None:
    incident = await post_incident(client, auth)
    path = f"/incidents/{incident['id']}"
    french = (await client.get(path, headers={"Accept-Language": "fr"})).text
    assert "Nous examinons les échecs de connexion." in french and "Erreurs de connexion" in french
    assert "We are looking into failed logins." not in french
    english = (await client.get(path, headers={"Accept-Language": "en"})).text
    assert "We are looking into failed logins." in english and "Login errors" in english
    assert "Nous examinons" not in english and "Erreurs de connexion" not in english
    # German has no translation: the English text, said to be English
    german = (await client.get(path, headers={"Accept-Language": "de"})).text
    assert re.search(r'<div class="update-body" lang="en">\s*<p>We are looking into failed logins', german)
    home = (await client.get("/", headers={"Accept-Language": "fr"})).text
    assert "Erreurs de connexion" in home and "Nous examinons" in home

    base = settings.public_url.rstrip("/")
    for code in settings.languages:
        assert f'<link rel="alternate" hreflang="{code}" href="{base}{path}?lang={code}">' in english
        assert f'hreflang="{code}" lang="{code}"' in english  # the switcher in the footer
    assert f'<link rel="alternate" hreflang="x-default" href="{base}{path}">' in english
    assert '<a href="/?lang=fr" hreflang="fr" lang="fr" aria-current="true">Français</a>' in home


async def test_the_default_and_the_offered_languages_are_the_settings(database_url: str, clean_database: None) -> None:
    """BROADCASTER_DEFAULT_LANGUAGE=de, BROADCASTER_LANGUAGES=de,en: German without asking, French
    (not offered) neither served nor listed, English on request."""
    settings = make_settings(database_url, default_language="de", languages="de,en")
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
        ):
            plain = await client.get("/")
            assert '<html lang="de">' in plain.text and plain.headers["content-language"] == "de"
            french = await client.get("/", headers={"Accept-Language": "fr"})
            assert '<html lang="de">' in french.text, "a language not offered falls back to the default"
            assert 'hreflang="fr"' not in plain.text and 'hreflang="en"' in plain.text
            english = await client.get("/?lang=en")
            assert '<html lang="en">' in english.text
    finally:
        await runtime.aclose()
