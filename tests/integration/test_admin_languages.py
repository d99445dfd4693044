"""The console's other pages (playbooks, subscribers, drills, the report) speak the reader's language:
Accept-Language or ?lang= (then kept in the cookie); English stays the default."""

from __future__ import annotations

import httpx

from broadcaster.crisis import playbook_yaml
from broadcaster.crisis.report import compute, to_markdown
from broadcaster.i18n import using
from broadcaster.runtime import Runtime
from tests.integration.test_console import login
from tests.unit.test_report import UPDATES, incident


async def test_admin_pages_in_the_readers_language(client: httpx.AsyncClient, runtime: Runtime) -> None:
    async with runtime.engine.begin() as conn:
        await playbook_yaml.load_sample(conn)
    await login(client, runtime, "ada", "admin")

    english = await client.get("/console/playbooks")
    assert "<h1>Crisis playbooks</h1>" in english.text and "Product recall" in english.text

    french = await client.get("/console/playbooks", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert french.headers["content-language"] == "fr"
    assert "<h1>Procédures de crise</h1>" in french.text and "Rappel de produit" in french.text
    assert "<th>Type de crise</th>" in french.text

    german = await client.get("/console/subscribers?lang=de")
    assert "<h1>Abonnenten</h1>" in german.text and "Alle aktiven Abonnenten herunterladen (CSV)" in german.text
    drills = await client.get("/console/drills")  # the cookie keeps German
    assert "<h1>Übungen</h1>" in drills.text and "Übungspublikum" in drills.text

    spanish = await client.get("/console/drills?lang=es")
    assert "<h1>Simulacros</h1>" in spanish.text and "Aún no hay simulacros." in spanish.text


def test_the_report_in_the_commanders_language() -> None:
    report = compute(incident(), UPDATES)
    with using("fr"):
        text = to_markdown(report)
    assert text.startswith("# Rapport post-incident : ")
    assert "- Délai avant la première mise à jour publique : 4 min" in text
    assert "## Chronologie" in text and "| De | À | Intervalle | Promis | Retard |" in text
    assert "Time to first public update" not in text
