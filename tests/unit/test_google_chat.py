"""``channels.google_chat``: cardsV2 that Chat accepts, threaded by incident, the URL's key and token kept."""

from __future__ import annotations

import json

import httpx
import pytest

from channels.base import Recipient, Sent
from channels.google_chat import REPLY_OPTION, GoogleChatChannel
from sandbox.providers.google_chat import GoogleChatProvider
from tests.support.chat import chat_messages

MESSAGES = chat_messages()


@pytest.mark.parametrize("case", list(MESSAGES))
def test_every_card_is_one_chat_accepts(case: str) -> None:
    rendition = GoogleChatChannel().render(MESSAGES[case])
    assert GoogleChatProvider()._problem(rendition) is None
    assert rendition["thread"] == {"threadKey": MESSAGES[case].incident_id}
    card = rendition["cardsV2"][0]["card"]
    assert card["header"]["title"].startswith(("Investigating", "Resolved", "Scheduled", "DRILL"))


def test_text_is_escaped_html() -> None:
    card = GoogleChatChannel().render(MESSAGES["odd"])["cardsV2"][0]["card"]
    text = card["sections"][0]["widgets"][0]["textParagraph"]["text"]
    assert text == 'Is 5 &lt; 6? <a href="https://example.com/a?b=1&amp;c=2">see</a> @everyone'


async def test_the_reply_option_joins_the_urls_own_query() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"name": "spaces/S/messages/M", "thread": {"name": "spaces/S/threads/T"}})

    channel = GoogleChatChannel(transport=httpx.MockTransport(handler))
    message = MESSAGES["first"]
    rendition = channel.render(message)
    url = "https://chat.test/v1/spaces/S/messages?key=K&token=T"
    try:
        outcomes = await channel.deliver(message, rendition, [Recipient(1, "s1", url)], {})
    finally:
        await channel.aclose()
    assert outcomes == {1: Sent(provider_id="spaces/S/messages/M")}
    params = sent[0].url.params
    assert (params["key"], params["token"], params["messageReplyOption"]) == ("K", "T", REPLY_OPTION)
    assert json.loads(sent[0].content) == rendition
