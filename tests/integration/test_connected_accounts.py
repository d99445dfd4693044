"""Accounts that stay connected: X's three ways to sign in and Bluesky's one shared session.

The real channels, built by ``Runtime.build`` as a worker builds them (so they share the
credential store: the database, the secret key and Redis), against the local X and Bluesky
apps on loopback. A "worker" here is one ``Runtime``: its own engine, Redis connections,
registry and channel instances, nothing in memory shared with another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import BroadcastChannel, ChannelContext, Published
from broadcaster.errors import PermanentError, RateLimited
from broadcaster.message import Message
from broadcaster.runtime import Runtime
from channels.x import XChannel
from sandbox.providers.bluesky import BlueskyProvider
from sandbox.providers.x import XProvider
from sandbox.serve import serve_app
from tests.conftest import make_settings
from tests.support.factories import make_message

pytestmark = pytest.mark.usefixtures("clean_database")

MARGIN_S = 4.0  # of a 5 s token: fresh for 1 s after each refresh


def update(number: int) -> Message:
    return make_message(update_id=f"upd{number:09d}", update_number=number, body_text=f"Update {number}: on it.")


async def post(channel: Any, number: int) -> Published:
    assert isinstance(channel, BroadcastChannel)
    message = update(number)
    return await channel.publish(message, channel.render(message), {})


@contextlib.asynccontextmanager
async def worker(settings: Settings) -> AsyncIterator[Runtime]:
    """One worker's runtime: what ``broadcaster worker`` builds at start-up."""
    runtime = Runtime.build(settings)
    try:
        yield runtime
    finally:
        await runtime.aclose()


def x_oauth2(database_url: str, provider: XProvider, base_url: str, **overrides: Any) -> Settings:
    values = {
        "x_base_url": base_url,
        "x_client_id": provider.client_id,
        "x_refresh_token": provider.refresh_token,
        "x_refresh_margin_s": MARGIN_S,
    }
    return make_settings(database_url, **(values | overrides))


def x_oauth1(provider: XProvider, base_url: str, **overrides: Any) -> Settings:
    values = {
        "x_base_url": base_url,
        "x_consumer_key": provider.consumer_key,
        "x_consumer_secret": provider.consumer_secret,
        "x_access_token": provider.access_token,
        "x_access_token_secret": provider.access_token_secret,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


# -- X, OAuth 2.0 with a refresh token ---------------------------------------------------------


async def test_an_access_token_expiring_in_5_s_is_refreshed_before_the_next_post(database_url: str) -> None:
    provider = XProvider(expires_in=5)
    async with serve_app(provider.app) as base_url, worker(x_oauth2(database_url, provider, base_url)) as runtime:
        channel = runtime.registry.get("x")
        await post(channel, 1)  # the store is empty: the configured refresh token gets the first access token
        await post(channel, 2)  # still fresh
        assert provider.refresh_calls == 1
        first_token = provider.signed_in_as[0]
        assert provider.signed_in_as == [first_token, first_token]
        await asyncio.sleep(1.0)  # now within the margin of its expiry
        await post(channel, 3)
        assert provider.refresh_calls == 2
        assert provider.signed_in_as[2] != first_token
        assert provider.refused == 0, "the channel waited for X to refuse the token instead of refreshing first"
        assert await channel.check() == "authenticated as @status"  # type: ignore[attr-defined]
    assert len(provider.posts) == 3


async def test_two_workers_posting_at_once_refresh_once(database_url: str) -> None:
    provider = XProvider(expires_in=5)
    async with serve_app(provider.app) as base_url:
        settings = x_oauth2(database_url, provider, base_url)
        async with worker(settings) as one, worker(settings) as two:
            x_one, x_two = one.registry.get("x"), two.registry.get("x")
            assert x_one is not x_two
            await asyncio.gather(post(x_one, 1), post(x_two, 2))
            assert provider.refresh_calls == 1
            await asyncio.sleep(1.0)
            await asyncio.gather(post(x_one, 3), post(x_two, 4))
            assert provider.refresh_calls == 2  # X refuses a spent refresh token: a race would have failed a post
    assert len(provider.posts) == 4 and provider.refused == 0
    assert len(set(provider.signed_in_as)) == 2


async def test_without_a_shared_store_two_workers_race_and_x_refuses_the_spent_token() -> None:
    # The control: each channel with its own memory, as before this store existed.
    provider = XProvider(expires_in=5)
    async with serve_app(provider.app) as base_url:
        settings = x_oauth2("", provider, base_url)
        channels = [XChannel.from_settings(settings, ChannelContext()) for _ in range(2)]
        results = await asyncio.gather(*(post(c, n) for n, c in enumerate(channels, 1)), return_exceptions=True)
        for channel in channels:
            assert channel is not None
            await channel.aclose()
    assert provider.refresh_calls == 2
    [refused] = [r for r in results if isinstance(r, BaseException)]
    assert isinstance(refused, PermanentError)
    assert "X refused the token refresh (400 invalid_request: Value passed for the token was invalid.)" in str(refused)


async def test_a_token_x_revoked_early_is_refreshed_and_the_post_sent(database_url: str) -> None:
    provider = XProvider()
    async with serve_app(provider.app) as base_url, worker(x_oauth2(database_url, provider, base_url)) as runtime:
        channel = runtime.registry.get("x")
        await post(channel, 1)
        provider.expire_access_tokens()
        await post(channel, 2)
    assert provider.refused == 1 and provider.refresh_calls == 2 and len(provider.posts) == 2


async def test_the_stored_token_outlives_a_restart_and_a_new_refresh_token_reseeds(database_url: str) -> None:
    provider = XProvider()
    async with serve_app(provider.app) as base_url:
        settings = x_oauth2(database_url, provider, base_url)
        for number in (1, 2):
            async with worker(settings) as runtime:
                await post(runtime.registry.get("x"), number)
        assert provider.refresh_calls == 1  # the second worker used the stored token
        # The operator gives a new refresh token (the old pair was revoked): it replaces the stored one.
        provider.refresh_token = "x-refresh-token-reissued"
        provider._refresh_tokens = {provider.refresh_token}
        provider.expire_access_tokens()
        async with worker(x_oauth2(database_url, provider, base_url)) as runtime:
            await post(runtime.registry.get("x"), 3)
    assert provider.refresh_calls == 2 and len(provider.posts) == 3


async def test_the_local_app_refuses_its_tokens_once_expired() -> None:
    provider = XProvider(expires_in=0.3)
    async with serve_app(provider.app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        form = {"grant_type": "refresh_token", "refresh_token": provider.refresh_token, "client_id": provider.client_id}
        token = (await client.post("/2/oauth2/token", data=form)).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/2/users/me", headers=bearer)).status_code == 200
        await asyncio.sleep(0.4)
        assert (await client.get("/2/users/me", headers=bearer)).status_code == 401


# -- X, OAuth 1.0a ------------------------------------------------------------------------------


async def test_oauth1_posts_are_signed_and_accepted() -> None:
    provider = XProvider()
    async with serve_app(provider.app) as base_url:
        channel = XChannel.from_settings(x_oauth1(provider, base_url), ChannelContext())
        assert channel is not None
        first = await post(channel, 1)
        message = update(2)
        reply = await channel.publish(message, channel.render(message), first.thread or {})
        assert await channel.check() == "authenticated as @status"
        await channel.aclose()
    assert provider.signed_in_as == ["oauth1", "oauth1"]
    assert [t["in_reply_to_tweet_id"] for t in provider.posts] == [None, first.provider_id]
    assert reply.provider_id == provider.posts[1]["id"]


@pytest.mark.parametrize("wrong", ["x_consumer_secret", "x_access_token_secret"])
async def test_oauth1_with_a_wrong_secret_is_refused_with_xs_reason(wrong: str) -> None:
    provider = XProvider()
    async with serve_app(provider.app) as base_url:
        channel = XChannel.from_settings(x_oauth1(provider, base_url, **{wrong: "not-the-secret"}), ChannelContext())
        assert channel is not None
        with pytest.raises(PermanentError, match=r"^credentials need attention: X answered 401: Unauthorized$"):
            await post(channel, 1)
        with pytest.raises(PermanentError, match="X answered 401"):
            await channel.check()
        await channel.aclose()
    assert provider.posts == [] and provider.refused == 1


async def test_a_static_token_keeps_working_and_its_check_names_the_account() -> None:
    provider = XProvider()
    async with serve_app(provider.app) as base_url:
        channel = XChannel(provider.token, base_url=base_url)
        assert await channel.check() == "authenticated as @status"
        provider.token = "revoked"
        with pytest.raises(PermanentError, match="X answered 401: Unauthorized"):
            await channel.check()
        await channel.aclose()


# -- Bluesky ------------------------------------------------------------------------------------


def bluesky(database_url: str, provider: BlueskyProvider, base_url: str) -> Settings:
    return make_settings(
        database_url,
        bluesky_base_url=base_url,
        bluesky_handle=provider.handle,
        bluesky_app_password=provider.password,
    )


async def test_four_worker_restarts_make_one_create_session(database_url: str) -> None:
    provider = BlueskyProvider()
    async with serve_app(provider.app) as base_url:
        settings = bluesky(database_url, provider, base_url)
        for number in range(1, 5):
            async with worker(settings) as runtime:  # a fresh process each time: nothing in memory survives
                await post(runtime.registry.get("bluesky"), number)
        async with worker(settings) as runtime:
            assert await runtime.registry.get("bluesky").check() == "authenticated as @status.example.com"  # type: ignore[attr-defined]
    assert provider.create_session_calls == 1
    assert len(provider.posts) == 4


async def test_a_session_near_expiry_is_refreshed_not_recreated(database_url: str) -> None:
    provider = BlueskyProvider(access_lifetime_s=61)  # the channel renews 60 s before expiry: fresh for 1 s
    async with serve_app(provider.app) as base_url:
        settings = bluesky(database_url, provider, base_url)
        async with worker(settings) as runtime:
            await post(runtime.registry.get("bluesky"), 1)
        await asyncio.sleep(1.0)
        async with worker(settings) as runtime:
            await post(runtime.registry.get("bluesky"), 2)
    assert [c for c in provider.calls if c != "getRecord"] == [
        "createSession",
        "createRecord",
        "refreshSession",  # before the post: no ExpiredToken was needed
        "createRecord",
    ]


async def test_a_rate_limited_sign_in_is_not_tried_again_by_any_worker(database_url: str) -> None:
    provider = BlueskyProvider(session_limit=1)
    async with serve_app(provider.app) as base_url:
        settings = bluesky(database_url, provider, base_url)
        async with worker(settings) as runtime:
            await post(runtime.registry.get("bluesky"), 1)
        provider.expire_access_tokens()
        provider.revoke_refresh_tokens()  # the session is gone: the next worker must sign in, over the limit
        for _ in range(3):
            async with worker(settings) as runtime:
                with pytest.raises(RateLimited, match="RateLimitExceeded") as caught:
                    await post(runtime.registry.get("bluesky"), 2)
                assert caught.value.retry_after_s is not None and 290 < caught.value.retry_after_s <= 301
    assert provider.create_session_calls == 2  # the first sign-in, and the one refused: then no more


async def test_the_local_pds_limits_create_session_per_account() -> None:
    provider = BlueskyProvider()
    body = {"identifier": provider.handle, "password": provider.password}
    async with serve_app(provider.app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        calls = [client.post("/xrpc/com.atproto.server.createSession", json=body) for _ in range(31)]
        answers = await asyncio.gather(*calls)
    [limited] = [a for a in answers if a.status_code != 200]
    assert limited.status_code == 429 and limited.json()["error"] == "RateLimitExceeded"
    assert limited.headers["ratelimit-policy"] == "30;w=300"
    assert limited.headers["ratelimit-remaining"] == "0"


async def test_a_stored_session_the_pds_forgot_is_replaced(database_url: str) -> None:
    provider = BlueskyProvider()
    async with serve_app(provider.app) as base_url:
        settings = bluesky(database_url, provider, base_url)
        async with worker(settings) as runtime:
            await post(runtime.registry.get("bluesky"), 1)
    restarted = BlueskyProvider()  # a new PDS process: it knows none of the tokens stored
    async with serve_app(restarted.app) as base_url, worker(bluesky(database_url, restarted, base_url)) as runtime:
        await post(runtime.registry.get("bluesky"), 2)
    assert [c for c in restarted.calls if c != "getRecord"] == [
        "createRecord",  # AuthenticationRequired
        "refreshSession",  # refused too
        "createSession",
        "createRecord",
    ]
