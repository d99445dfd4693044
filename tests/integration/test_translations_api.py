"""Translations on the API: stored with the update, returned, refused for a language not offered."""

from __future__ import annotations

import httpx


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
