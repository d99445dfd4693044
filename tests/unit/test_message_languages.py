"""The messages every channel sends, in the reader's language: the words around the update
translated, the translation note where the update is not, and the SMS still fitted to its
segments (counted in UCS-2 where a language's letters need it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from broadcaster.config import Settings
from broadcaster.i18n import catalogs, using
from broadcaster.jobs import contact_notices
from broadcaster.message import Message
from broadcaster.render import localized
from channels import discord, google_chat, slack, teams
from channels._articles import render_article
from channels._segments import UCS2, encoding_of, segment_count
from channels.email import EmailChannel
from channels.sms import SmsChannel, SmsSettings
from tests.support.factories import make_message

FRENCH = {"fr": {"title": "Erreurs de l'API", "message": "Nous enquêtons sur des **erreurs** de l'API."}}
NOTES = {
    "fr": "Cette mise à jour n'est pas encore disponible en français ; la voici en anglais.",
    "de": "Diese Meldung gibt es noch nicht auf Deutsch; hier ist sie auf Englisch.",
    "es": "Esta actualización aún no está disponible en español; aquí la tiene en inglés.",
}


def message(language: str, **overrides: Any) -> Message:
    """The factory's update (with a French translation) as a reader of ``language`` gets it."""
    fields = {"translations": FRENCH, "next_update_at": datetime(2026, 11, 23, 10, 35, tzinfo=UTC)} | overrides
    return localized(make_message(**fields), language)


def email(**settings: Any) -> EmailChannel:
    return EmailChannel(Settings(_env_file=None, smtp_host="127.0.0.1", email_from="s@example.com", **settings))  # type: ignore[call-arg]


def sms(max_segments: int = 2) -> SmsChannel:
    values = {**SmsSettings.example, "sms_max_segments": max_segments}
    return SmsChannel(Settings(_env_file=None, **values))  # type: ignore[call-arg]


def test_the_messages_domain_is_translated_into_every_shipped_language() -> None:
    assert [gap for gap in catalogs.missing() if gap.domain == "messages"] == []


def test_an_english_reader_gets_no_note_and_english_words() -> None:
    rendition = email().render(message("en"))
    assert rendition["headers"]["Content-Language"] == "en"
    assert '<html lang="en">' in rendition["html"] and "This update is not available" not in rendition["text"]
    assert "Update 1, posted 2026-11-23 10:05 UTC" in rendition["text"]


def test_a_french_reader_of_a_translated_update_reads_french_throughout() -> None:
    rendition = email().render(message("fr"))
    assert rendition["subject"] == "[Enquête en cours] Erreurs de l'API"
    assert rendition["headers"]["Content-Language"] == "fr" and '<html lang="fr">' in rendition["html"]
    text = rendition["text"]
    assert "Nous enquêtons sur des erreurs de l'API." in text and NOTES["fr"] not in text
    assert "Mise à jour 1, publiée le" in text and "(auparavant : opérationnel)" in text
    assert "Se désabonner : {{unsubscribe_url}}" in text
    assert "Gérer votre abonnement</a>" in rendition["html"]


@pytest.mark.parametrize("language", ["fr", "de", "es"])
def test_a_reader_without_a_translation_gets_the_note_first_in_both_parts(language: str) -> None:
    rendition = email().render(message(language, translations={}))
    text, html = rendition["text"], rendition["html"]
    assert text.index(NOTES[language]) < text.index("Example Status") < text.index("We are investigating")
    escaped = NOTES[language].replace("'", "&#39;")
    assert html.index(escaped) < html.index("<h1")
    assert ' lang="en"><p>We are investigating' in html  # the English text is marked as English
    assert rendition["headers"]["Content-Language"] == language


def test_german_keeps_the_capital_of_an_earlier_status() -> None:
    text = email().render(message("de"))["text"]
    assert "- API: Teilausfall (zuvor: Betriebsbereit)" in text


def test_a_drill_is_marked_in_the_readers_language() -> None:
    drill = message("de", drill=True, translations={})
    assert email().render(drill)["subject"] == "[ÜBUNG] [Wird untersucht] Elevated API error rates"
    assert sms(3).render(drill)["text"].startswith(NOTES["de"] + " ÜBUNG [Wird untersucht]")


def test_the_sms_note_counts_in_its_segments_and_the_link_ends_it() -> None:
    roomy = sms(3).render(message("fr", translations={}))
    assert roomy["text"].startswith(NOTES["fr"] + " [Enquête en cours] Elevated API error rates:")
    assert roomy["encoding"] == UCS2 and roomy["segments"] <= 3  # "ç" has no GSM-7 code
    assert roomy["text"].endswith(" https://status.example.com/incidents/inc000000001")

    # In two UCS-2 segments the whole note would leave no room for the status and title.
    tight = sms(2).render(message("fr", translations={}))
    assert tight["text"].startswith("En anglais : [Enquête en cours] Elevated API error rates: ")
    assert tight["segments"] == segment_count(tight["text"]) <= 2
    assert tight["text"].endswith(" https://status.example.com/incidents/inc000000001")
    assert sms(2).render(message("fr", translations={})) == tight  # deterministic


def test_a_translated_sms_is_counted_in_ucs2_when_its_letters_need_it() -> None:
    rendition = sms().render(message("fr"))
    assert rendition["text"] == (
        "[Enquête en cours] Erreurs de l'API: Nous enquêtons sur des erreurs de l'API. "
        "https://status.example.com/incidents/inc000000001"
    )
    assert rendition["encoding"] == UCS2 == encoding_of(rendition["text"])
    assert rendition["segments"] == 2  # 128 UTF-16 units: over 70, within two of 67


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("ç" * 70, 1),
        ("ç" * 71, 2),
        ("ç" * 134, 2),
        ("ç" * 135, 3),
        ("ç" * 66 + "😀" + "ç" * 3, 2),
        ("ç" * 66 + "😀" + "ç" * 66, 3),
        ("é" * 160, 1),
    ],
)
def test_ucs2_segments_count_utf16_units_and_never_split_a_pair(text: str, segments: int) -> None:
    assert segment_count(text) == segments


def test_chat_cards_say_the_note_under_the_headline() -> None:
    german = message("de", translations={})
    blocks = slack.render_message(german)["blocks"]
    assert blocks[0]["text"]["text"] == "Wird untersucht: Elevated API error rates"
    assert blocks[1] == {"type": "context", "elements": [{"type": "mrkdwn", "text": NOTES["de"]}]}
    body = teams.card(german)["body"]
    assert body[1]["text"] == NOTES["de"] and body[1]["isSubtle"] is True
    assert discord.render_embed(german)["description"].startswith(f"*{NOTES['de']}*\n\nWe are investigating")
    widgets = google_chat.card(german)["sections"][0]["widgets"]
    assert widgets[0] == {"textParagraph": {"text": f"<i>{NOTES['de']}</i>"}}


def test_chat_cards_in_spanish() -> None:
    spanish = message("es", translations={})
    actions = slack.render_message(spanish)["blocks"][-1]["elements"]
    assert actions[0]["text"]["text"] == "Ver el incidente"
    footer = teams.card(spanish)["body"][-1]["text"]
    assert footer.startswith("Example Status · actualización 1 · ") and "próxima actualización antes del" in footer
    assert google_chat.card(spanish)["header"]["subtitle"] == "Impacto: Grave"


def test_an_english_chat_card_has_no_note() -> None:
    english = message("en")
    assert [b["type"] for b in slack.render_message(english)["blocks"]][:2] == ["header", "section"]
    assert len(teams.card(english)["body"]) == len(teams.card(replace(english, translation_note="x"))["body"]) - 1


def test_the_knowledge_base_article_in_french() -> None:
    resolved = message("fr", status="resolved", update_number=3)
    article = render_article(resolved, 150)
    assert article["title"] == "[RÉSOLU] Erreurs de l'API — quoi dire aux appelants"
    assert "<h2>Ce qui a été dit au public</h2>" in article["body_html"]
    assert "<strong>RÉSOLU</strong> depuis le" in article["body_html"]
    untranslated = render_article(message("fr", translations={}), 150)["body_html"]
    assert untranslated.startswith('<p class="translation-note">Cette mise à jour')
    assert '<div class="public-update" lang="en">' in untranslated


def test_a_crisis_team_notice_in_the_pages_language() -> None:
    settings = Settings(_env_file=None, secret_key=SecretStr("k" * 40))  # type: ignore[call-arg]
    contact = {"level": 2, "role": None, "acknowledged_at": None, "notified_number": 0}
    with using("en"):  # the job's own language does not matter: the message's does
        view = contact_notices.render(settings, message("fr", drill=True), {"meta": {}}, contact, "https://ack")
    assert view["subject"] == "[EXERCICE] [Crise N2] Erreurs de l'API: Enquête en cours"
    assert view["sms"].startswith("EXERCICE [Crise N2] Erreurs de l'API: Enquête en cours. Votre rôle : contact.")
    assert "Vous faites partie de la cellule de crise pour : Erreurs de l'API" in view["text"]
    assert '<html lang="fr">' in view["html"] and "Accuser réception</a>" in view["html"]


def test_a_maintenance_window_reads_as_a_range_in_each_language() -> None:
    start = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    window = {"kind": "maintenance", "status": "scheduled", "impact": "maintenance", "components": ()}
    maintenance = {**window, "scheduled_for": start, "scheduled_until": start + timedelta(hours=2)}
    texts = {lang: email().render(message(lang, translations={}, **maintenance))["text"] for lang in ("en", "fr")}
    assert "Maintenance window: 2026-11-23 22:00 UTC to 2026-11-24 00:00 UTC" in texts["en"]
    assert "Fenêtre de maintenance : du 23 nov. 2026 à 22:00" in texts["fr"]
    assert "Suivre cette maintenance : https://status.example.com/incidents/inc000000001" in texts["fr"]
