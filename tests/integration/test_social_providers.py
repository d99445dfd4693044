"""The social channels against local Mastodon, Bluesky and X servers over real HTTP.

Each platform gets the same story: a three-update incident becomes one post and two
replies chained to it; a deleted parent starts a new thread; provider failures become
the right delivery errors. Then what is particular to each: Mastodon's idempotent retry,
Bluesky's session refresh and record schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from atproto_client import models
from atproto_client.models.utils import get_or_create

from broadcaster.delivery.channel import Published
from broadcaster.errors import PermanentError, RateLimited, RetryableError
from broadcaster.message import Message
from channels.bluesky import BlueskyChannel
from channels.mastodon import MastodonChannel
from channels.x import XChannel
from sandbox.providers.bluesky import BlueskyProvider
from sandbox.providers.mastodon import MastodonProvider
from sandbox.providers.x import XProvider
from sandbox.serve import serve_app
from tests.support.factories import make_message

Provider = MastodonProvider | BlueskyProvider | XProvider
Social = MastodonChannel | BlueskyChannel | XChannel
STATUSES = ("investigating", "identified", "resolved")


@dataclass
class Rig:
    """A provider served on loopback and a channel pointed at it."""

    name: str
    provider: Any
    channel: Any

    def posts(self) -> list[tuple[str, str | None]]:
        """(post id, id of the post it replies to) for every post made, oldest first."""
        if self.name == "mastodon":
            return [(s["id"], s["in_reply_to_id"]) for s in self.provider.posts]
        if self.name == "x":
            return [(t["id"], t["in_reply_to_tweet_id"]) for t in self.provider.posts]
        return [(r["uri"], (r["value"].get("reply") or {}).get("parent", {}).get("uri")) for r in self.provider.posts]

    def delete(self, post_id: str) -> None:
        self.provider.delete(post_id)


def build(name: str, base_url: str, provider: Any, timeout_s: float) -> Social:
    if name == "mastodon":
        return MastodonChannel(base_url, provider.token, timeout_s=timeout_s)
    if name == "bluesky":
        return BlueskyChannel(provider.handle, provider.password, base_url=base_url, timeout_s=timeout_s)
    return XChannel(provider.token, base_url=base_url, timeout_s=timeout_s)


PROVIDERS: dict[str, Callable[[], Any]] = {"mastodon": MastodonProvider, "bluesky": BlueskyProvider, "x": XProvider}


@pytest.fixture(params=list(PROVIDERS))
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    name = request.param
    provider = PROVIDERS[name]()
    provider.stall_s = 0.6
    async with serve_app(provider.app) as base_url:
        channel = build(name, base_url, provider, timeout_s=0.3)
        yield Rig(name, provider, channel)
        await channel.aclose()


def update(number: int, **overrides: Any) -> Message:
    return make_message(
        update_id=f"upd{number:09d}",
        update_number=number,
        status=STATUSES[(number - 1) % 3],
        body_text=f"Update {number}: we are working on it.",
        **overrides,
    )


async def publish(rig: Rig, message: Message, thread: Any) -> Published:
    return await rig.channel.publish(message, rig.channel.render(message), thread or {})  # type: ignore[no-any-return]


async def test_three_updates_make_a_post_and_two_chained_replies(rig: Rig) -> None:
    thread = None
    published = []
    for number in (1, 2, 3):
        result = await publish(rig, update(number), thread)
        published.append(result)
        thread = result.thread
    ids = [p.provider_id for p in published]
    assert rig.posts() == [(ids[0], None), (ids[1], ids[0]), (ids[2], ids[1])]
    if rig.name == "bluesky":
        root = rig.provider.posts[0]
        for record in rig.provider.posts[1:]:
            assert record["value"]["reply"]["root"] == {"uri": root["uri"], "cid": root["cid"]}
        assert thread == {
            "root": {"uri": root["uri"], "cid": root["cid"]},
            "last": {"uri": ids[2], "cid": rig.provider.posts[2]["cid"]},
        }
    else:
        assert thread == {"root_id": ids[0], "last_id": ids[2]}


async def test_a_deleted_parent_starts_a_new_thread(rig: Rig) -> None:
    first = await publish(rig, update(1), None)
    second = await publish(rig, update(2), first.thread)
    assert second.provider_id is not None
    rig.delete(second.provider_id)
    third = await publish(rig, update(3), second.thread)
    fourth = await publish(rig, update(4, incident_title="Still elevated API error rates"), third.thread)
    assert rig.posts()[2:] == [(third.provider_id, None), (fourth.provider_id, third.provider_id)]


async def test_rate_limits_and_outages_are_retryable(rig: Rig) -> None:
    rig.provider.fail_next(429)
    with pytest.raises(RateLimited) as caught:
        await publish(rig, update(1), None)
    assert caught.value.retry_after_s is not None and 0 < caught.value.retry_after_s <= 60
    rig.provider.fail_next(500)
    with pytest.raises(RetryableError):
        await publish(rig, update(1), None)
    published = await publish(rig, update(1), None)
    assert rig.posts() == [(published.provider_id, None)]


async def test_a_stalled_provider_is_a_retryable_timeout(rig: Rig) -> None:
    rig.provider.stall_next()
    with pytest.raises(RetryableError, match="timed out"):
        await publish(rig, update(1), None)


async def test_over_limit_text_is_refused_permanently(rig: Rig) -> None:
    message = update(1)
    rendition = {**rig.channel.render(message), "text": "x " * 400 + message.public_url}
    with pytest.raises(PermanentError) as caught:
        await rig.channel.publish(message, rendition, {})
    assert not caught.value.reason.startswith("credentials")
    assert rig.posts() == []


async def test_wrong_credentials_need_attention(rig: Rig) -> None:
    if rig.name == "bluesky":
        rig.provider.password = "revoked"
    else:
        rig.provider.token = "revoked"
    with pytest.raises(PermanentError, match=r"^credentials need attention: "):
        await publish(rig, update(1), None)


# -- Mastodon -----------------------------------------------------------------------------


async def test_mastodon_retry_after_a_timeout_does_not_double_post() -> None:
    provider = MastodonProvider(stall_s=2.0)
    async with serve_app(provider.app) as base_url:
        # A roomy timeout: under CI load a loopback connect alone can take 0.3 s.
        channel = MastodonChannel(base_url, provider.token, visibility="unlisted", timeout_s=1.0)
        message = update(1)
        provider.stall_next()
        with pytest.raises(RetryableError):
            await channel.publish(message, channel.render(message), {})
        assert len(provider.posts) == 1  # the status exists although we never heard back
        published = await channel.publish(message, channel.render(message), {})
        await channel.aclose()
    assert [s["id"] for s in provider.posts] == [published.provider_id]
    keys = [r["idempotency_key"] for r in provider.requests]
    assert keys == [f"broadcaster-{message.update_id}"] * 2
    assert provider.posts[0]["visibility"] == "unlisted"
    assert published.url == provider.posts[0]["url"]


# -- Bluesky ------------------------------------------------------------------------------


async def test_bluesky_records_match_the_lexicon_and_link_the_exact_bytes() -> None:
    provider = BlueskyProvider()
    async with serve_app(provider.app) as base_url:
        channel = BlueskyChannel(provider.handle, provider.password, base_url=base_url)
        thread = None
        title = "Paiement échoué 💳 — 東京 region 👩\u200d💻"
        for number in (1, 2, 3):
            result = await publish(Rig("bluesky", provider, channel), update(number, incident_title=title), thread)
            thread = result.thread
        await channel.aclose()
    assert provider.calls.count("createSession") == 1
    for body, stored in zip(provider.requests, provider.posts, strict=True):
        record = body["record"]
        model = get_or_create(record, models.AppBskyFeedPost.Record, strict_string_format=True)
        assert isinstance(model, models.AppBskyFeedPost.Record)
        assert model.text == record["text"] == stored["value"]["text"]
        assert model.langs == ["en"]
        [facet] = model.facets or []
        [feature] = facet.features
        assert isinstance(feature, models.AppBskyRichtextFacet.Link)
        link = update(1).public_url
        assert feature.uri == link
        text_bytes = record["text"].encode()
        assert text_bytes[facet.index.byte_start : facet.index.byte_end] == link.encode()
        assert facet.index.byte_end == len(text_bytes)
        assert body["repo"] == provider.did
    replies = [
        get_or_create(b["record"], models.AppBskyFeedPost.Record, strict_string_format=True)
        for b in provider.requests[1:]
    ]
    assert all(r.reply is not None and r.reply.root.uri == provider.posts[0]["uri"] for r in replies)


async def test_bluesky_refreshes_an_expired_session_once() -> None:
    provider = BlueskyProvider()
    async with serve_app(provider.app) as base_url:
        channel = BlueskyChannel(provider.handle, provider.password, base_url=base_url)
        first = await channel.publish(update(1), channel.render(update(1)), {})
        provider.expire_access_tokens()
        await channel.publish(update(2), channel.render(update(2)), first.thread or {})
        await channel.publish(update(3), channel.render(update(3)), first.thread or {})
        await channel.aclose()
    assert [c for c in provider.calls if c != "getRecord"] == [
        "createSession",
        "createRecord",
        "createRecord",  # ExpiredToken
        "refreshSession",
        "createRecord",
        "createRecord",
    ]
    assert len(provider.posts) == 3


async def test_bluesky_signs_in_again_when_the_refresh_token_is_gone_too() -> None:
    provider = BlueskyProvider()
    async with serve_app(provider.app) as base_url:
        channel = BlueskyChannel(provider.handle, provider.password, base_url=base_url)
        await channel.publish(update(1), channel.render(update(1)), {})
        provider.expire_access_tokens()
        provider.revoke_refresh_tokens()
        await channel.publish(update(2), channel.render(update(2)), {})
        await channel.aclose()
    assert provider.calls.count("createSession") == 2
    assert len(provider.posts) == 2
