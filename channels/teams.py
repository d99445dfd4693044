"""Microsoft Teams: an Adaptive Card 1.5 to each subscriber's Workflows (Power Automate) webhook.

Teams retired its Office 365 connectors for the Workflows app: a channel's owner adds the
"Post to a channel when a webhook request is received" workflow, and its URL takes a message
whose attachment is an Adaptive Card. The card: the headline as a heading ``TextBlock``
coloured by impact, the translation note when the update is not in the reader's language, the
update in a ``TextBlock`` (the card's markdown subset: emphasis, lists
and links), the affected components as a ``FactSet``, the small print, and an
``Action.OpenUrl`` to the incident. Workflows answers 202 once it has the request; an error
comes as ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from broadcaster.i18n import gettext, using
from channels._chat import ChatWebhookChannel, button_label, cut, footer, headline, read_json, webhook_outcome, window
from channels._markup import TEAMS, markup
from channels.base import Message, Outcome, Rendition, short_text

CARD_VERSION = "1.5"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
BODY_MAX = 20_000  # Teams refuses a message over ~28 KB
HEADLINE_MAX = 200
# The card's named colours, by impact while open; "good" once resolved or completed.
COLOURS = {"none": "default", "minor": "warning", "major": "warning", "critical": "attention", "maintenance": "accent"}


def card(message: Message) -> dict[str, Any]:
    """The Adaptive Card for ``message``, in its language."""
    with using(message.language):
        return _card(message)


def _card(message: Message) -> dict[str, Any]:
    tone = "good" if message.is_closing else COLOURS.get(message.impact, "default")
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": headline(message, HEADLINE_MAX),
            "style": "heading",
            "size": "medium",
            "weight": "bolder",
            "color": tone,
            "wrap": True,
        },
    ]
    if message.translation_note:
        body.append({"type": "TextBlock", "text": message.translation_note, "isSubtle": True, "wrap": True})
    body.append({"type": "TextBlock", "text": cut(markup(message.body_html, TEAMS), BODY_MAX), "wrap": True})
    facts = [{"title": c.name, "value": c.status_label} for c in message.components]
    if window(message):
        facts.append({"title": gettext("Window"), "value": window(message)})
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    body.append({"type": "TextBlock", "text": footer(message), "isSubtle": True, "size": "small", "wrap": True})
    return {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "fallbackText": short_text(message, 300),
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": button_label(message), "url": message.public_url}],
    }


class TeamsChannel(ChatWebhookChannel):
    """Adaptive Cards to subscribers' Teams Workflows webhooks. Always enabled."""

    name: ClassVar[str] = "teams"
    title: ClassVar[str] = "Microsoft Teams"
    provider: ClassVar[str] = "teams workflow"

    def render(self, message: Message) -> Rendition:
        """The JSON body each subscriber's workflow receives: a message carrying the card."""
        return {
            "type": "message",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card(message)}],
        }

    def outcome(self, response: httpx.Response) -> Outcome:
        error = read_json(response)
        detail = response.text.strip()
        if isinstance(error, dict) and isinstance(error.get("error"), dict):
            detail = f"{error['error'].get('code', '')}: {error['error'].get('message', '')}"
        run_id = response.headers.get("x-ms-workflow-run-id")
        return webhook_outcome(response, self.provider, detail, provider_id=run_id)
