"""The agent desk in every language: each update with its translations, the desk's own words in the agent's."""

from __future__ import annotations

import re

import httpx

from broadcaster.render import markdown_to_html
from broadcaster.runtime import Runtime
from tests.integration.test_desk import AGENT, FIRST, login, make_user, open_incident, post_update

ENGLISH = "We are rolling back a bad **deploy**."
FRENCH = "Nous annulons un **déploiement** défectueux."
FRENCH_TITLE = "Erreurs de l’API"


async def agent(client: httpx.AsyncClient, runtime: Runtime) -> httpx.AsyncClient:
    await make_user(runtime, "ana", "agent")
    await login(client, "ana")
    return client


def french_block(page: str) -> str:
    block = re.search(r'<details class="translation" lang="fr"[^>]*>(.*?)</details>', page, re.S)
    assert block, page
    return block.group(1)


async def test_an_update_shows_in_english_and_in_french_labelled(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    await agent(client, runtime)
    api = await open_incident(client, auth)
    translations = {"fr": {"title": FRENCH_TITLE, "message": FRENCH}}
    await post_update(
        client, auth, api["id"], status="identified", message=ENGLISH, translations=translations, agent=AGENT
    )
    for path in ("/desk", "/desk/fragment"):
        page = (await client.get(path)).text
        card = page[page.index(f'id="incident-{api["id"]}"') :]
        assert markdown_to_html(ENGLISH) in card, path
        assert '<p class="language-label" lang="en">English</p>' in card, path
        french = french_block(card)
        assert '<span class="language-label">Français</span>' in french and FRENCH_TITLE in french, path
        assert markdown_to_html(FRENCH) in french, path
        english_at, french_at = card.index(markdown_to_html(ENGLISH)), card.index(markdown_to_html(FRENCH))
        assert english_at < french_at < card.index("Talking points"), path
        assert str(AGENT["do_not_say"]) in card, "the agent material stays as written"
    # A French word finds the update, shown in both languages.
    found = (await client.get("/desk/search", params={"q": "déploiement"})).text
    assert markdown_to_html(ENGLISH) in found and markdown_to_html(FRENCH) in french_block(found)


async def test_the_desk_speaks_the_agents_browser_language(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    await agent(client, runtime)
    api = await open_incident(client, auth, translations={"fr": {"title": FRENCH_TITLE, "message": FRENCH}})
    german = await client.get("/desk", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert german.status_code == 200
    page = german.text
    assert '<html lang="de">' in page and "<title>Agentenarbeitsplatz · " in page
    assert "Aktuelle Störungen" in page and "Sprachregelung" in page and "Freigegebene Antworten" in page
    assert 'data-text-on="Live · aktualisiert um {time}"' in page, "desk.js's words come translated"
    assert "Active incidents" not in page
    assert markdown_to_html(FIRST) in page, "the update itself stays in the language it was written in"
    assert "<details" in page and "Français" in page
    # One cached desk per language: English and German readers each get their own.
    assert "Desk as of " in (await client.get("/desk/fragment")).text
    fragment = (await client.get("/desk/fragment", headers={"Accept-Language": "de"})).text
    assert "Stand des Agentenarbeitsplatzes: " in fragment and f'id="incident-{api["id"]}"' in fragment
    search = (await client.get("/desk/search", params={"q": "refund"}, headers={"Accept-Language": "de"})).text
    assert "1 Ergebnis für „refund“" in search
