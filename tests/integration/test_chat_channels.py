"""The chat channels end to end: the admin API, the worker, the local Slack, Teams, Discord and Google Chat.

Each service is its local app (``sandbox/providers``) on a loopback port, checking payloads
as the service does; the page owner's Slack workspace and Discord forum are apps of their own,
so what is scripted for one never reaches another. What the apps accepted is then checked
again with each service's own validator (``tests.support.chat``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from broadcaster.db import deliveries, subscribers
from broadcaster.errors import PermanentError
from channels.discord import DiscordForumChannel
from channels.slack import SlackBotChannel
from sandbox.providers.discord import DiscordProvider
from sandbox.providers.google_chat import GoogleChatProvider
from sandbox.providers.slack import SlackProvider
from sandbox.providers.teams import TeamsProvider
from sandbox.serve import serve_app
from tests.conftest import make_settings, run_worker
from tests.support.all_channels import Stack, app_stack
from tests.support.chat import adaptive_card_problems, discord_embed_problems, slack_blocks_problems
from tests.support.factories import make_message

CHATS = ["slack", "slack_bot", "teams", "discord", "discord_forum", "google_chat"]
FORUM = "900"
TEAMS_PATH = "/workflows/{name}/triggers/manual/paths/invoke?api-version=2016-06-01&sig=s1g"


@dataclass
class Chats:
    slack: SlackProvider = field(default_factory=SlackProvider)  # subscribers' webhooks
    bot: SlackProvider = field(default_factory=lambda: SlackProvider(min_interval_s=0.9))  # the owner's workspace
    teams: TeamsProvider = field(default_factory=TeamsProvider)
    discord: DiscordProvider = field(default_factory=DiscordProvider)  # subscribers' webhooks
    forum: DiscordProvider = field(default_factory=lambda: DiscordProvider(forums={FORUM}))
    google: GoogleChatProvider = field(default_factory=GoogleChatProvider)
    urls: dict[str, str] = field(default_factory=dict)

    def hooks(self, name: str) -> dict[str, str]:
        """One subscriber URL per chat channel, ``name`` telling them apart."""
        return {
            "slack": f"{self.urls['slack']}/services/T0/B0/{name}",
            "teams": self.urls["teams"] + TEAMS_PATH.format(name=name),
            "discord": f"{self.urls['discord']}/api/webhooks/{abs(hash(name)) % 10**9}/token-{name}",
            "google_chat": f"{self.urls['google']}/v1/spaces/{name}/messages?key=k3y&token=t0k",
        }


@pytest.fixture
async def chats() -> AsyncIterator[Chats]:
    found = Chats()
    async with contextlib.AsyncExitStack() as stack:
        for name in ("slack", "bot", "teams", "discord", "forum", "google"):
            found.urls[name] = await stack.enter_async_context(serve_app(getattr(found, name).app))
        yield found


@pytest.fixture
async def stack(chats: Chats, database_url: str) -> AsyncIterator[Stack]:
    settings = make_settings(
        database_url,
        slack_base_url=chats.urls["bot"] + "/api",
        slack_bot_token=chats.bot.token,
        slack_channel="#status",
        discord_forum_webhook_url=f"{chats.urls['forum']}/api/webhooks/{FORUM}/forum-token",
        http_timeout_s=5.0,
    )
    async with app_stack(settings) as built:
        yield built


async def post(stack: Stack, body: dict[str, Any], incident_id: str | None = None) -> dict[str, Any]:
    path = f"/api/v1/incidents/{incident_id}/updates" if incident_id else "/api/v1/incidents"
    response = await stack.client.post(path, headers=stack.auth, json={**body, "channels": CHATS})
    assert response.status_code == 201, response.text
    answer = response.json()
    return dict(answer if incident_id else answer["update"])


async def ledger(stack: Stack, update_id: str) -> dict[tuple[str, str | None], tuple[str, int, str | None]]:
    """{(channel, address): (state, attempts, last_error)} of one update."""
    async with stack.runtime.engine.connect() as conn:
        rows = await conn.execute(
            select(
                deliveries.c.channel,
                deliveries.c.address,
                deliveries.c.state,
                deliveries.c.attempts,
                deliveries.c.last_error,
            ).where(deliveries.c.update_id == update_id)
        )
        return {(r.channel, r.address): (r.state, r.attempts, r.last_error) for r in rows}


async def test_three_updates_thread_in_every_chat_and_every_payload_validates(chats: Chats, stack: Stack) -> None:
    """Acceptance 1."""
    hooks = chats.hooks("ops")
    for channel, url in hooks.items():
        await stack.subscribe(channel, url)
    preview = await stack.client.post(
        "/api/v1/preview",
        headers=stack.auth,
        json={"title": "Checkout errors", "status": "investigating", "message": "x", "channels": CHATS},
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["slack"]["blocks"] and shown["slack_bot"]["blocks"] and shown["discord_forum"]["thread_name"]
    assert shown["teams"]["attachments"][0]["content"]["type"] == "AdaptiveCard"
    assert shown["discord"]["embeds"] and shown["google_chat"]["cardsV2"]

    first = await post(stack, {"title": "Checkout errors", "status": "investigating", "message": "We **see** it."})
    incident = first["incident_id"]
    await run_worker(stack.settings)
    steps = [("identified", "A faulty deploy; rolling back."), ("resolved", "Fixed: error rates are normal.")]
    updates = [first["id"]]
    for status, text in steps:
        updates.append((await post(stack, {"status": status, "message": text}, incident))["id"])
        await run_worker(stack.settings)

    for update_id in updates:
        states = await ledger(stack, update_id)
        assert len(states) == 6 and {state for state, _, _ in states.values()} == {"sent"}, states

    bot = chats.bot.posts
    roots = [p for p in bot if p["action"] == "post" and p["thread_ts"] is None]
    replies = [p for p in bot if p["action"] == "post" and p["thread_ts"]]
    edits = [p for p in bot if p["action"] == "update"]
    assert chats.bot.rate_limited == 0, "posts paced to one a second"
    assert len(roots) == 1 and len(edits) == 2 and len(replies) == 2, bot
    root = roots[0]["ts"]
    assert {p["ts"] for p in edits} == {root} and {p["thread_ts"] for p in replies} == {root}
    assert chats.bot.messages[root]["blocks"][0]["text"]["text"] == "Resolved: Checkout errors"
    assert chats.bot.messages[root]["edits"] == 2

    slack = chats.slack.webhook_posts("T0/B0/ops")
    assert [p["blocks"][0]["text"]["text"].split(":")[0] for p in slack] == ["Investigating", "Identified", "Resolved"]
    for blocks in [p["blocks"] for p in slack] + [p["blocks"] for p in bot]:
        assert slack_blocks_problems(blocks) == []

    assert len(chats.teams.received) == 3
    for entry in chats.teams.received:
        assert adaptive_card_problems(entry["message"]["attachments"][0]["content"]) == []

    assert len(chats.discord.messages) == 3 and len({m["channel_id"] for m in chats.discord.messages}) == 1
    forum = chats.forum.messages
    assert len(forum) == 3 and len({m["channel_id"] for m in forum}) == 1, "one forum post for the incident"
    assert chats.forum.threads[forum[0]["channel_id"]]["name"] == "Checkout errors"
    post_id = forum[0]["channel_id"]
    assert [r["query"].get("thread_id") for r in chats.forum.requests] == [None, post_id, post_id]
    for message in chats.discord.messages + forum:
        assert discord_embed_problems(message["embeds"][0]) == []

    google = chats.google.messages
    assert len(google) == 3 and {m["thread"]["threadKey"] for m in google} == {incident}
    assert len(chats.google.threads()) == 1 and [m["threadReply"] for m in google] == [False, True, True]
    assert all(
        r["query"]["messageReplyOption"] == "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD" for r in chats.google.requests
    )


async def test_a_429_with_retry_after_2_is_delivered_exactly_once_after_the_wait(chats: Chats, stack: Stack) -> None:
    """Acceptance 2: every service answers its first request 429 with ``Retry-After: 2``."""
    for channel, url in chats.hooks("slow").items():
        await stack.subscribe(channel, url)
    for provider in (chats.slack, chats.bot, chats.teams, chats.discord, chats.forum, chats.google):
        provider.fail_next(429, retry_after_s=2)
    started = time.monotonic()
    update = await post(stack, {"title": "Slow down", "status": "investigating", "message": "Rate limited."})
    await run_worker(stack.settings)
    elapsed_s = time.monotonic() - started
    states = await ledger(stack, update["id"])
    assert {channel: (state, attempts) for (channel, _), (state, attempts, _) in states.items()} == dict.fromkeys(
        CHATS, ("sent", 2)
    )
    assert elapsed_s >= 2.0, f"retried after {elapsed_s:.2f} s, sooner than Retry-After"
    accepted = {
        "slack": len(chats.slack.webhook_posts()),
        "slack_bot": len(chats.bot.posts),
        "teams": len(chats.teams.received),
        "discord": len(chats.discord.messages),
        "discord_forum": len(chats.forum.messages),
        "google_chat": len(chats.google.messages),
    }
    assert accepted == dict.fromkeys(CHATS, 1), "delivered exactly once"
    tried = [len(p.requests) for p in (chats.slack, chats.bot, chats.teams, chats.discord, chats.forum, chats.google)]
    assert tried == [2] * 6


async def test_a_webhook_answering_404_or_410_fails_once_and_disables_the_subscriber(
    chats: Chats, stack: Stack
) -> None:
    """Acceptance 3."""
    hooks = chats.hooks("gone")
    chats.slack.gone.add("T0/B0/gone")
    chats.teams.gone.add("gone")
    chats.discord.gone.add(hooks["discord"].split("/")[-2])
    chats.google.gone.add("gone")
    archived = f"{chats.urls['slack']}/services/T0/B0/archived"
    chats.slack.archived.add("T0/B0/archived")
    stored = {channel: await stack.subscribe(channel, url) for channel, url in hooks.items()}
    stored["slack archived"] = await stack.subscribe("slack", archived)
    update = await post(stack, {"title": "Gone", "status": "investigating", "message": "Who is there?"})
    await run_worker(stack.settings)

    states = await ledger(stack, update["id"])
    expected_words = {
        hooks["slack"]: "slack webhook answered 404: no_service",
        archived: "slack webhook answered 410: channel_is_archived",
        hooks["teams"]: "teams workflow answered 404: WorkflowNotFound",
        hooks["discord"]: "discord webhook answered 404: Unknown Webhook (code 10015)",
        hooks["google_chat"]: "google chat webhook answered 404: NOT_FOUND",
    }
    for url, words in expected_words.items():
        [(state, attempts, error)] = [value for (_, address), value in states.items() if address == url]
        assert (state, attempts) == ("failed", 1) and error and error.startswith(words), (url, error)
        assert "subscriber disabled" in error and url not in error and "127.0.0.1" not in error, error
    async with stack.runtime.engine.connect() as conn:
        reasons = dict(
            (await conn.execute(select(subscribers.c.address, subscribers.c.suppressed_reason))).tuples().all()
        )
    assert {url: reasons[url] for url in expected_words} == {url: states_error(states, url) for url in expected_words}
    tried = [len(p.requests) for p in (chats.slack, chats.teams, chats.discord, chats.google)]
    assert tried == [2, 1, 1, 1], "no retry"

    again = await post(stack, {"status": "identified", "message": "Still there?"}, update["incident_id"])
    await run_worker(stack.settings)
    assert [a for (_, a) in await ledger(stack, again["id"]) if a in expected_words] == [], "disabled: not sent to"
    assert [len(p.requests) for p in (chats.slack, chats.teams, chats.discord, chats.google)] == tried


def states_error(states: dict[tuple[str, str | None], tuple[str, int, str | None]], url: str) -> str | None:
    return next(error for (_, address), (_, _, error) in states.items() if address == url)


async def test_the_slack_bot_checks_its_token_and_names_what_slack_refused(chats: Chats) -> None:
    """The pre-flight (auth.test) and the bot's permanent refusals, against the local Slack."""
    base = chats.urls["bot"] + "/api"
    good = SlackBotChannel(chats.bot.token, "#status", base_url=base)
    bad_token = SlackBotChannel("xoxb-revoked", "#status", base_url=base)
    no_channel = SlackBotChannel(chats.bot.token, "#nowhere", base_url=base)
    message = make_message()
    try:
        assert await good.check() == "auth.test: @statusbot in Local workspace"
        with pytest.raises(PermanentError, match=r"^credentials need attention: slack refused auth.test: invalid_auth"):
            await bad_token.check()
        with pytest.raises(PermanentError, match=r"slack refused chat.postMessage: channel_not_found$"):
            await no_channel.publish(message, no_channel.render(message), {})
    finally:
        for channel in (good, bad_token, no_channel):
            await channel.aclose()
    assert chats.bot.posts == []


async def test_the_discord_forum_checks_its_webhook_without_posting(chats: Chats) -> None:
    forum = DiscordForumChannel(f"{chats.urls['forum']}/api/webhooks/{FORUM}/forum-token")
    chats.forum.gone.add("901")
    gone = DiscordForumChannel(f"{chats.urls['forum']}/api/webhooks/901/forum-token")
    try:
        assert await forum.check() == f"webhook 'Status (forum)' of channel {FORUM}0"
        with pytest.raises(PermanentError, match=r"^credentials need attention: discord forum webhook answered 404"):
            await gone.check()
    finally:
        await forum.aclose()
        await gone.aclose()
    assert chats.forum.messages == []
