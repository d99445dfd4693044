"""``/console/sandbox`` over HTTP: what the sandbox's providers received, grouped, signatures checked."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from broadcaster.config import Settings
from broadcaster.demo import seed
from broadcaster.runtime import Runtime
from status_page.console.sandbox import signature_verified
from tests.conftest import run_worker
from tests.integration.test_console import login
from tests.support.sandbox_process import Running, sandbox_settings, start_sandbox
from tests.support.worker_process import settings_env

CHATS = ("slack", "slack_bot", "teams", "discord", "discord_forum", "google_chat")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Running]:
    running = start_sandbox()
    yield running
    running.stop()


@pytest.fixture
def settings(database_url: str, clean_database: None, sandbox: Running) -> Settings:
    return sandbox_settings(database_url, sandbox, sms_rate_per_s=100.0)


async def test_the_demo_reaches_every_channel_and_the_page_shows_it(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, sandbox: Running
) -> None:
    lines = await seed(settings)  # what `broadcaster up` seeds: subscribers at sandbox addresses, one incident
    assert any("demo subscribers at sandbox addresses" in line for line in lines)
    await run_worker(settings)
    events = sandbox.outbox()["events"]
    received: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        received.setdefault(event["channel"], []).append(event["data"])
    assert {"bluesky", "email", "freshdesk", "mastodon", "sms", "webhook", "x", "zendesk", *CHATS} <= set(received)
    assert [mail["rcpt_tos"] for mail in received["email"]] == [["dana@example.com"]], "Sam follows Payments only"

    await login(client, runtime, "ic", "commander")
    page = await client.get("/console/sandbox")
    assert page.status_code == 200, page.text
    assert "nothing leaves this machine" in page.text
    for section in ("email", "sms", "mastodon", "bluesky", "x", "zendesk", "freshdesk", "webhook", *CHATS):
        assert f'id="sandbox-{section}"' in page.text
    bot = page.text.split('id="sandbox-slack_bot"')[1].split("</section>")[0]
    assert "Elevated error rates on the API" in bot and "edited" not in bot  # one update: a root, no edit yet
    assert "Forum post: Elevated error rates on the API" in page.text
    assert "sandbox-demo-secret" not in page.text, "a chat webhook URL is a secret: shown masked"
    assert "/slack/…" in page.text
    assert "signature verified" in page.text and "List-Unsubscribe" in page.text
    assert "Elevated error rates on the API" in page.text

    last = events[-1]["seq"]
    unchanged = await client.get("/console/sandbox/fragment", params={"after": last})
    assert unchanged.status_code == 204, "nothing new: nothing to swap in"
    fresh = await client.get("/console/sandbox/fragment", params={"after": 0})
    assert fresh.status_code == 200 and fresh.json()["last"] == last


async def test_the_page_is_absent_without_the_sandbox(client: httpx.AsyncClient, runtime: Runtime) -> None:
    # this module's settings have the sandbox; an app without it answers 404 (checked on the route's guard)
    await login(client, runtime, "ic", "commander")
    runtime.settings = runtime.settings.model_copy(update={"sandbox_url": ""})
    assert (await client.get("/console/sandbox")).status_code == 404


def test_a_signature_is_checked_however_old_it_is() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps({"hello": "world"})
    signature = Webhook(secret).sign("msg_1", datetime(2020, 1, 1, tzinfo=UTC), body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1577836800", "webhook-signature": signature}
    assert signature_verified(secret, headers, body)
    assert not signature_verified(secret, headers, body + " ")
    assert not signature_verified("whsec_" + "A" * 32, headers, body)
    assert not signature_verified(secret, {**headers, "webhook-timestamp": "x"}, body)


def test_the_pre_flight_check_passes_for_every_channel_the_sandbox_plays(settings: Settings) -> None:
    """``broadcaster channels check`` with every channel configured at the sandbox: exit 0, a line each."""
    env = settings_env(settings)
    done = subprocess.run(
        [sys.executable, "-m", "broadcaster.cli", "channels", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[1:] if line.strip()}
    checked = {"email", "sms", "mastodon", "bluesky", "x", "zendesk", "freshdesk", "slack_bot", "discord_forum"}
    assert {name: rows.get(name) for name in checked} == dict.fromkeys(checked, "ok"), done.stdout
