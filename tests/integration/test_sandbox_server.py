"""``python -m sandbox``: one process plays every provider, and its outbox shows what each accepted.

The sandbox runs as the child process ``broadcaster up`` starts; the channels are configured
only by ``sandbox.config.channel_environment``, so an update that reaches all eight outbox
channels proves each channel's paths work under the sandbox's prefixes with its credentials.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from channels import sms
from sandbox import config
from sandbox.outbox import Outbox
from sandbox.serve import free_port
from tests.conftest import run_worker
from tests.support.all_channels import EMAIL, PHONE, app_stack
from tests.support.sandbox_process import Running, sandbox_settings, start_sandbox

OUTBOX_CHANNELS = {"email", "sms", "mastodon", "bluesky", "x", "zendesk", "freshdesk", "webhook"}
CHAT_CHANNELS = {"slack", "slack_bot", "teams", "discord", "discord_forum", "google_chat"}
CHAT_DEMO_PATHS = {
    "slack": config.SLACK_DEMO_PATH,
    "teams": config.TEAMS_DEMO_PATH,
    "discord": config.DISCORD_DEMO_PATH,
    "google_chat": config.GOOGLE_CHAT_DEMO_PATH,
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Running]:
    running = start_sandbox()
    yield running
    if running.process.poll() is None:
        running.stop()


def by_channel(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["channel"], []).append(event["data"])
    return grouped


async def test_one_update_reaches_every_channel_and_a_follow_up_threads(sandbox: Running, database_url: str) -> None:
    settings = sandbox_settings(database_url, sandbox, public_url="http://127.0.0.1:8000", http_timeout_s=5.0)
    start = sandbox.outbox()["last"]
    async with app_stack(settings) as stack:
        await stack.subscribe("email", EMAIL)
        await stack.subscribe("sms", PHONE)
        webhook = await stack.subscribe("webhook", sandbox.base_url + config.WEBHOOK_DEMO_PATH)
        for chat, path in CHAT_DEMO_PATHS.items():
            await stack.subscribe(chat, sandbox.base_url + path)
        opened = await stack.client.post(
            "/api/v1/incidents",
            headers=stack.auth,
            json={"title": "Checkout errors", "status": "investigating", "message": "We are looking into it."},
        )
        assert opened.status_code == 201, opened.text
        await run_worker(settings)
        first = sandbox.outbox(start)
        seen = by_channel(first["events"])
        assert {name: len(items) for name, items in seen.items()} == dict.fromkeys(OUTBOX_CHANNELS | CHAT_CHANNELS, 1)
        assert [event["seq"] for event in first["events"]] == list(range(start + 1, first["last"] + 1))

        mail = seen["email"][0]
        headers = dict(mail["headers"])
        assert mail["rcpt_tos"] == [EMAIL] and mail["mail_from"]
        assert "Checkout errors" in mail["subject"] and "We are looking into it." in mail["text"]
        assert "<html" in mail["html"].lower()
        assert headers["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe?token=")
        text = seen["sms"][0]
        assert (text["to"], text["from"], text["sid"][:2]) == (PHONE, config.TWILIO_FROM, "SM")
        assert (text["encoding"], text["segments"]) == ("GSM-7", sms.segment_count(text["body"]))
        hook = seen["webhook"][0]
        assert hook["path"] == config.WEBHOOK_DEMO_PATH
        Webhook(webhook["secret"]).verify(hook["body"], hook["headers"])  # raises unless signed
        toot, post, tweet = seen["mastodon"][0], seen["bluesky"][0], seen["x"][0]
        assert toot["in_reply_to_id"] is None and toot["visibility"] == "public" and "Checkout errors" in toot["text"]
        assert post["reply_parent"] is None and post["facets"] and post["uri"].startswith("at://")
        assert tweet["in_reply_to_tweet_id"] is None and "Checkout errors" in tweet["text"]
        for kb in ("zendesk", "freshdesk"):
            article = seen[kb][0]
            assert (article["revision"], article["action"]) == (1, "created")
            assert article["title"] and "We are looking into it." in article["body_html"]

        incident_id = opened.json()["update"]["incident_id"]
        follow_up = await stack.client.post(
            f"/api/v1/incidents/{incident_id}/updates",
            headers=stack.auth,
            json={"status": "identified", "message": "A faulty deploy; rolling back."},
        )
        assert follow_up.status_code == 201, follow_up.text
        await run_worker(settings)
        again = by_channel(sandbox.outbox(first["last"])["events"])
        expected = dict.fromkeys(OUTBOX_CHANNELS | CHAT_CHANNELS, 1) | {"slack_bot": 2}  # the root edited, a reply
        assert {name: len(items) for name, items in again.items()} == expected
        assert again["mastodon"][0]["in_reply_to_id"] == toot["id"]
        assert again["x"][0]["in_reply_to_tweet_id"] == tweet["id"]
        assert again["bluesky"][0]["reply_parent"] == post["uri"] == again["bluesky"][0]["reply_root"]
        root = seen["slack_bot"][0]
        assert (root["channel"], root["thread_ts"], root["edited"]) == (config.SLACK_CHANNEL, None, False)
        edit, reply = again["slack_bot"]
        assert (edit["ts"], edit["edited"], reply["thread_ts"]) == (root["ts"], True, root["ts"])
        assert "Identified" in edit["blocks"][0]["text"]["text"]
        assert "rolling back" in reply["blocks"][1]["text"]["text"]
        assert again["discord_forum"][0]["channel_id"] == seen["discord_forum"][0]["channel_id"]
        assert seen["discord_forum"][0]["thread_name"] == "Checkout errors"
        assert again["google_chat"][0]["thread"] == seen["google_chat"][0]["thread"]
        assert again["google_chat"][0]["reply"] and not seen["google_chat"][0]["reply"]
        assert seen["teams"][0]["card"]["version"] == "1.5" and seen["discord"][0]["embeds"][0]["title"]
        for kb in ("zendesk", "freshdesk"):
            article = again[kb][0]
            assert (article["article_id"], article["revision"], article["action"]) == (
                seen[kb][0]["article_id"],
                2,
                "updated",
            )
            assert "rolling back" in article["body_html"]


def test_only_accepted_requests_become_events(sandbox: Running) -> None:
    last = sandbox.outbox()["last"]
    refused = httpx.post(f"{sandbox.base_url}/mastodon/api/v1/statuses", data={"status": "hi"}, timeout=5)
    assert refused.status_code == 401
    accepted = httpx.post(
        f"{sandbox.base_url}/mastodon/api/v1/statuses",
        data={"status": "hi"},
        headers={"Authorization": f"Bearer {config.MASTODON_TOKEN}"},
        timeout=5,
    )
    assert accepted.status_code == 200
    events = sandbox.outbox(last)["events"]
    assert [(e["channel"], e["data"]["text"]) for e in events] == [("mastodon", "hi")]
    bad = httpx.get(f"{sandbox.base_url}/outbox", params={"after": "-1"}, timeout=5)
    assert bad.status_code == 400 and "after" in bad.json()["error"]


def test_outbox_keeps_the_latest_and_pages() -> None:
    outbox = Outbox(keep=2000)
    for number in range(2100):
        outbox.record("x", {"n": number})
    events, last = outbox.after(0)
    assert (len(events), events[0]["seq"], last) == (500, 101, 600)  # the first 100 were dropped
    events, last = outbox.after(2000)
    assert ([e["seq"] for e in events], last) == (list(range(2001, 2101)), 2100)
    assert outbox.after(2100) == ([], 2100)
    assert outbox.after(5000) == ([], 2100)  # a poller ahead of a restarted sandbox learns so


def test_exits_cleanly_and_quietly_on_sigterm() -> None:
    running = start_sandbox()
    assert httpx.post(f"{running.base_url}/webhook/anything", content=b"{}", timeout=5).status_code == 204
    assert running.outbox()["events"][0]["data"]["path"] == "/webhook/anything"
    assert running.stop() == (0, b"", b"")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_refuses_a_host_that_is_not_loopback(host: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", host, "--port", str(free_port())],
        capture_output=True,
        timeout=10,
    )
    assert done.returncode == 2
    assert f"--host {host} is not loopback" in done.stderr.decode()
