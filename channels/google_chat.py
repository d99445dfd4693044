"""Google Chat: a ``cardsV2`` card to each subscriber's space webhook, one thread per incident.

A space's webhook URL (``https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…``)
takes a message. Every update of an incident carries ``thread.threadKey`` = the incident id,
sent with ``messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD``: the first update starts
the thread, the rest reply in it (and should that thread be gone, start a new one).

The card: the headline as its header (the impact as subtitle), the translation note when the
update is not in the reader's language, the update as the card text's HTML subset, the
affected components as ``decoratedText`` widgets, the small print, and a button to the
incident. Google answers the message it made (``name`` becomes the provider id), or
``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from broadcaster.i18n import gettext, using
from broadcaster.i18n.labels import impact_label
from channels._chat import ChatWebhookChannel, button_label, cut, footer, headline, read_json, webhook_outcome, window
from channels._markup import GOOGLE_CHAT, markup
from channels.base import Message, Outcome, Rendition

REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
TEXT_MAX = 4000  # a message's text budget: Google refuses one over 4096 characters
HEADER_MAX = 200


def card(message: Message) -> dict[str, Any]:
    """The card (``cardsV2[0].card``) for ``message``, in its language."""
    with using(message.language):
        return _card(message)


def _card(message: Message) -> dict[str, Any]:
    if message.kind == "maintenance":
        impact = gettext("Maintenance")
    else:
        impact = gettext("%(impact)s impact", impact=impact_label(message.impact))
    text: list[dict[str, Any]] = []
    if message.translation_note:
        text.append({"textParagraph": {"text": f"<i>{html.escape(message.translation_note, quote=False)}</i>"}})
    text.append({"textParagraph": {"text": cut(markup(message.body_html, GOOGLE_CHAT), TEXT_MAX)}})
    sections: list[dict[str, Any]] = [{"widgets": text}]
    facts = [(c.name, c.status_label) for c in message.components]
    if window(message):
        facts.append((gettext("Window"), window(message)))
    if facts:
        widgets = [{"decoratedText": {"topLabel": label, "text": html.escape(value)}} for label, value in facts]
        sections.append({"header": gettext("Affected components"), "widgets": widgets})
    button = {"text": button_label(message), "onClick": {"openLink": {"url": message.public_url}}}
    sections.append(
        {
            "widgets": [
                {"textParagraph": {"text": html.escape(footer(message))}},
                {"buttonList": {"buttons": [button]}},
            ]
        }
    )
    return {"header": {"title": headline(message, HEADER_MAX), "subtitle": impact}, "sections": sections}


class GoogleChatChannel(ChatWebhookChannel):
    """Cards to subscribers' Google Chat space webhooks, threaded by incident. Always enabled."""

    name: ClassVar[str] = "google_chat"
    title: ClassVar[str] = "Google Chat"
    provider: ClassVar[str] = "google chat webhook"
    params: ClassVar[Mapping[str, str]] = {"messageReplyOption": REPLY_OPTION}

    def render(self, message: Message) -> Rendition:
        """The JSON body each space's webhook receives."""
        return {
            "cardsV2": [{"cardId": f"incident-{message.incident_id}", "card": card(message)}],
            "thread": {"threadKey": message.incident_id},
        }

    def outcome(self, response: httpx.Response) -> Outcome:
        body = read_json(response)
        detail = response.text.strip()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            detail = f"{error.get('status', '')}: {error.get('message', '')}"
        name = body.get("name") if isinstance(body, dict) else None
        return webhook_outcome(response, self.provider, detail, provider_id=str(name) if name else None)
