"""``channels.discord``: embeds within every Discord limit, Discord's 429 JSON honoured."""

from __future__ import annotations

import httpx
import pytest

from broadcaster.errors import PermanentError, RateLimited
from channels._chat import CLOSED_COLOUR, IMPACT_COLOURS
from channels.base import Recipient, Sent
from channels.discord import DiscordChannel, DiscordForumChannel, embed_size, render_embed
from sandbox.providers.discord import embed_problems
from tests.support.chat import chat_messages, discord_embed_problems

MESSAGES = chat_messages()


@pytest.mark.parametrize("case", list(MESSAGES))
def test_every_embed_is_within_discords_limits(case: str) -> None:
    rendition = DiscordChannel().render(MESSAGES[case])
    [embed] = rendition["embeds"]
    assert discord_embed_problems(embed) == []
    assert embed_problems([embed]) == {}  # the local Discord agrees
    assert embed_size(embed) <= 6000
    assert rendition["allowed_mentions"] == {"parse": []}, "an update never pings @everyone"


def test_limits_bite() -> None:
    long, many = render_embed(MESSAGES["long"]), render_embed(MESSAGES["components"])
    assert 4096 - len("details …") <= len(long["description"]) <= 4096 and long["description"].endswith("…")
    assert len(many["fields"]) == 25 and many["fields"][-1]["name"] == "And"
    assert discord_embed_problems({**long, "description": "x" * 4097})
    assert embed_problems([{**long, "description": "x" * 4097}])


def test_colour_by_impact_and_green_once_resolved() -> None:
    assert render_embed(MESSAGES["first"])["color"] == IMPACT_COLOURS["major"]
    assert render_embed(MESSAGES["components"])["color"] == IMPACT_COLOURS["critical"]
    assert render_embed(MESSAGES["resolved"])["color"] == CLOSED_COLOUR


def test_the_forum_names_its_post_after_the_incident() -> None:
    channel = DiscordForumChannel("https://discord.test/api/webhooks/1/t")
    assert channel.render(MESSAGES["first"])["thread_name"] == "Elevated API error rates"
    assert len(channel.render(MESSAGES["odd"])["thread_name"]) <= 100


async def test_wait_true_the_message_id_and_the_429_json() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if "slow" in request.url.path:
            return httpx.Response(
                429, json={"message": "You are being rate limited.", "retry_after": 2.5, "global": False}
            )
        if "gone" in request.url.path:
            return httpx.Response(404, json={"message": "Unknown Webhook", "code": 10015})
        return httpx.Response(200, json={"id": "1234", "channel_id": "99"})

    channel = DiscordChannel(transport=httpx.MockTransport(handler))
    message = MESSAGES["first"]
    urls = [f"https://discord.test/api/webhooks/{name}/token?thread_id=5" for name in ("ok", "slow", "gone")]
    recipients = [Recipient(delivery_id=n, subscriber_id=f"s{n}", address=url) for n, url in enumerate(urls)]
    try:
        outcomes = await channel.deliver(message, channel.render(message), recipients, {})
    finally:
        await channel.aclose()
    assert all(url.params["wait"] == "true" and url.params["thread_id"] == "5" for url in seen)
    assert outcomes[0] == Sent(provider_id="1234")
    slow = outcomes[1]
    assert isinstance(slow, RateLimited) and slow.retry_after_s == 2.5
    gone = outcomes[2]
    assert (
        isinstance(gone, PermanentError) and gone.suppress_recipient and "Unknown Webhook (code 10015)" in gone.reason
    )
