"""Listening: replies to our Mastodon and Bluesky posts, fetched by the worker's cron from the local provider
apps, on the desk and the console within one polling period, counted in the report (issue 24, acceptance 5);
a rate limit pushes the channel's next turn back."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import select

from broadcaster.crisis.report import load_report
from broadcaster.db import incident_replies, listening_polls, utcnow
from broadcaster.jobs.listening import listen
from tests.conftest import run_worker, running_worker
from tests.integration.test_console import login
from tests.support.all_channels import all_providers, app_stack

POLL_S = 2


async def test_replies_reach_the_desk_and_console_within_one_polling_period(database_url: str) -> None:
    async with (
        all_providers() as providers,
        app_stack(providers.settings(database_url, listening_interval_s=POLL_S)) as stack,
    ):
        client, auth, rt = stack.client, stack.auth, stack.runtime
        body = {"title": "Checkout errors", "status": "investigating", "message": "We are looking into it."}
        incident = (await client.post("/api/v1/incidents", headers=auth, json=body)).json()
        await run_worker(stack.settings)
        (status,) = providers.mastodon.posts
        (post,) = providers.bluesky.posts
        async with running_worker(stack.settings):
            await asyncio.sleep(0.5)  # a first turn finds no reply yet
            providers.mastodon.add_reply(status["id"], "Is checkout down for everyone? <b>bold</b>")
            later = providers.mastodon.add_reply(status["id"], "Same here, card payments fail")
            providers.bluesky.add_reply(post["uri"], "Failing for me in Berlin too", handle="anna.example.com")
            added = time.monotonic()
            while time.monotonic() - added < POLL_S + 1.5:
                async with rt.engine.connect() as conn:
                    stored = (await conn.execute(select(incident_replies.c.id))).all()
                if len(stored) == 3:
                    break
                await asyncio.sleep(0.1)
            waited_s = time.monotonic() - added
        print(f"3 replies stored {waited_s:.2f} s after they were posted (polling period {POLL_S} s)")
        assert len(stored) == 3, f"{len(stored)} replies stored after {waited_s:.1f} s"
        assert waited_s <= POLL_S + 1.5

        await login(client, rt, "cmdr", "commander")
        desk = (await client.get("/desk")).text
        assert "What people are saying" in desk
        assert "Same here, card payments fail" in desk and "@anna.example.com" in desk
        assert "bluesky 1 · mastodon 2" in desk
        assert "<b>bold</b>" not in desk, "a stranger's markup is text, never HTML"
        console = (await client.get(f"/console/incidents/{incident['id']}")).text
        assert "@reader@example.social" in console and "Failing for me in Berlin too" in console
        assert console.index("Failing for me in Berlin too") < console.index("Is checkout down"), "newest first"
        assert f'data-reply="{later["id"]}"' in console
        async with rt.engine.connect() as conn:
            report = await load_report(conn, incident["id"])
        assert report.replies_total == 3
        assert dict(report.replies_by_channel) == {"bluesky": 1, "mastodon": 2}
        assert sum(n for _, n in report.reply_volume) == 3
        assert "Replies and mentions" in (await client.get(f"/console/incidents/{incident['id']}/report")).text


async def test_a_rate_limit_pushes_the_next_turn_back_and_nothing_is_asked_meanwhile(database_url: str) -> None:
    async with (
        all_providers() as providers,
        app_stack(providers.settings(database_url, listening_interval_s=POLL_S)) as stack,
    ):
        rt = stack.runtime
        body = {"title": "Login errors", "status": "investigating", "message": "We are looking into it."}
        await stack.client.post("/api/v1/incidents", headers=stack.auth, json=body)
        await run_worker(stack.settings)
        providers.mastodon.add_reply(providers.mastodon.posts[0]["id"], "Can't log in")
        providers.mastodon.fail_reads(429, reset_in_s=30)
        now = utcnow()
        assert (await listen(rt, now))["mastodon"] == 0
        async with rt.engine.connect() as conn:
            row = (await conn.execute(select(listening_polls).where(listening_polls.c.channel == "mastodon"))).one()
        assert row.next_poll_at >= now + timedelta(seconds=25), "the provider's reset time is honoured"
        assert "429" in (row.error or "")
        reads = len(providers.mastodon.reads)
        assert "mastodon" not in await listen(rt, now + timedelta(seconds=POLL_S + 1)), "no turn before the reset"
        assert len(providers.mastodon.reads) == reads
        assert (await listen(rt, now + timedelta(seconds=31)))["mastodon"] == 1
        assert (await listen(rt, now + timedelta(seconds=40)))["mastodon"] == 0, "a reply is stored once"


async def test_a_deleted_post_is_no_error_and_a_mention_of_it_still_counts(database_url: str) -> None:
    async with all_providers() as providers, app_stack(providers.settings(database_url)) as stack:
        body = {"title": "Search slow", "status": "investigating", "message": "We are looking into it."}
        await stack.client.post("/api/v1/incidents", headers=stack.auth, json=body)
        await run_worker(stack.settings)
        providers.mastodon.add_reply(providers.mastodon.posts[0]["id"], "Slow for me")
        providers.bluesky.add_reply(providers.bluesky.posts[0]["uri"], "Same")
        providers.mastodon.delete(providers.mastodon.posts[0]["id"])
        providers.bluesky.delete(providers.bluesky.posts[0]["uri"])
        # Bluesky's thread is gone with its root; Mastodon's mention (in the notifications) still answers us
        assert await listen(stack.runtime) == {"mastodon": 1, "bluesky": 0}
        async with stack.runtime.engine.connect() as conn:
            errors = (await conn.execute(select(listening_polls.c.error))).scalars().all()
        assert errors == [None, None]
