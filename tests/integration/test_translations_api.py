"""Translations on the API: stored with the update, returned, refused for a language not offered."""

from __future__ import annotations

import httpx

from broadcaster import posting
from broadcaster.actors import Actor
from broadcaster.config import Settings
from broadcaster.post_requests import request_from_body
from broadcaster.runtime import Runtime


async def test_an_update_keeps_its_translations_and_bad_languages_are_named(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={
            "title": "Login errors",
            "status": "investigating",
            "message": "We are looking into failed logins.",
            "translations": {"FR": {"title": "Erreurs de connexion", "message": "Nous examinons les échecs."}},
        },
    )
    assert created.status_code == 201, created.text
    incident_id = created.json()["id"]
    updates = (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth)).json()["updates"]
    french = {"title": "Erreurs de connexion", "message": "Nous examinons les échecs."}
    assert updates[0]["translations"] == {"fr": french}

    for code, field in (("xx", "translations.xx"), ("en", "translations.en")):
        refused = await client.post(
            f"/api/v1/incidents/{incident_id}/updates",
            headers=auth,
            json={"status": "identified", "message": "Found it.", "translations": {code: {"message": "…"}}},
        )
        assert refused.status_code == 422, refused.text
        assert field in refused.json()["error"]["fields"], refused.text

    blank = await client.post(
        f"/api/v1/incidents/{incident_id}/updates",
        headers=auth,
        json={"status": "identified", "message": "Found it.", "translations": {"de": {"message": " "}}},
    )
    assert blank.status_code == 422 and "translations.de.message" in blank.text, blank.text


async def test_a_broadcast_channel_speaks_its_own_language_when_set(settings: Settings, runtime: Runtime) -> None:
    """BROADCASTER_CHANNEL_LANGUAGES: the desk (a broadcast channel) set to French previews in French,
    whatever the reader's language; unset, it speaks the page's default."""
    body = {
        "title": "Login errors",
        "status": "investigating",
        "message": "We are looking into failed logins.",
        "translations": {"fr": {"title": "Erreurs de connexion", "message": "Nous examinons les échecs."}},
    }
    french_desk = Runtime.build(settings.model_copy(update={"channel_languages": {"desk": "fr"}}))
    try:
        for rt, title in ((runtime, "Login errors"), (french_desk, "Erreurs de connexion")):
            previews = await posting.preview_languages(
                rt, request_from_body(body), actor=Actor.cli(), languages=["en", "de"]
            )
            for reader in ("en", "de"):
                assert title in previews[reader]["desk"]["title"], (reader, previews[reader]["desk"])
    finally:
        await french_desk.aclose()
