"""The pre-flight check, end to end: the real channels against the local providers on loopback,
through ``broadcaster channels check`` (a real process), ``GET /api/v1/channels/health``, the
console and the desk, and the commanders' one notice per failure."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import channel_checks, deliveries
from broadcaster.delivery import preflight
from broadcaster.domain.users import create_user
from broadcaster.models import DeliveryKind
from sandbox.smtp import RecordingSMTP
from tests.integration.test_openapi import conforms, served_document
from tests.support.all_channels import (
    FRESHDESK_FOLDER_ID,
    ZENDESK_SECTION_ID,
    Providers,
    Stack,
    all_providers,
    app_stack,
)
from tests.support.worker_process import settings_env

CLI = [sys.executable, "-m", "broadcaster.cli", "channels", "check"]
CHECKED = ("email", "sms", "mastodon", "zendesk", "freshdesk")
# always on, nothing of ours to verify (a chat webhook is its subscriber's)
SKIPPED = ("status_page", "desk", "webhook", "slack", "teams", "discord", "google_chat")
PASSWORD = "correct horse battery"
COMMANDER = "carol@example.org"


def five_channels(providers: Providers, database_url: str, **overrides: Any) -> Settings:
    """Email, SMS, Mastodon, Zendesk and Freshdesk pointed at their local providers."""
    return providers.settings(database_url, channels=CHECKED, channel_check_timeout_s=5.0, **overrides)


async def check_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``broadcaster channels check`` as its own process (the local providers keep serving meanwhile)."""
    return await asyncio.to_thread(
        subprocess.run, [*CLI, *args], env=settings_env(settings), capture_output=True, text=True, timeout=60
    )


def lines_by_channel(stdout: str) -> dict[str, str]:
    header, *rows = stdout.strip().splitlines()
    assert header.split()[:2] == ["channel", "ok"], stdout
    return {row.split()[0]: row for row in rows}


@pytest.fixture
async def providers() -> AsyncIterator[Providers]:
    async with all_providers() as served:
        yield served


async def test_every_configured_channel_passes_and_nothing_is_posted(
    providers: Providers, database_url: str, clean_database: None
) -> None:
    settings = five_channels(providers, database_url)
    connections = providers.smtp.handler.connections  # aiosmtpd's own readiness probe counts one
    done = await check_command(settings)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = lines_by_channel(done.stdout)
    assert set(lines) == {*CHECKED, *SKIPPED}, done.stdout  # one line per configured channel
    for name in CHECKED:
        assert lines[name].split()[1] == "ok", lines[name]
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", lines[name]), lines[name]
    for name in SKIPPED:
        assert lines[name].split()[1] == "skipped", lines[name]
    assert f"EHLO ok at {providers.smtp.host}:{providers.smtp.port}" in lines["email"]
    assert f"account {providers.twilio.account_sid} is active" in lines["sms"]
    assert f"logged in as @{providers.mastodon.username}" in lines["mastodon"]
    assert f"section {ZENDESK_SECTION_ID} exists" in lines["zendesk"]
    assert f"folder {FRESHDESK_FOLDER_ID} exists" in lines["freshdesk"]
    # Twilio's account answer carries the auth token: it is never printed.
    assert providers.twilio.auth_token not in done.stdout + done.stderr

    # Each provider was asked, and nothing was posted, sent or written anywhere.
    assert providers.twilio.account_fetches == 1 and providers.mastodon.credential_checks == 1
    assert providers.smtp.handler.connections == connections + 1 and providers.smtp.received == []
    assert providers.twilio.messages == [] and providers.mastodon.statuses == {}
    assert providers.zendesk.articles == {} and providers.freshdesk.articles == {}
    assert [r.path for r in providers.zendesk.received] == [
        "/api/v2/users/me.json",
        f"/api/v2/help_center/sections/{ZENDESK_SECTION_ID}.json",
    ]
    assert [r.method for r in providers.freshdesk.received] == ["GET", "GET"]

    from broadcaster.db import make_engine

    engine = make_engine(database_url, pool=False)
    try:
        async with engine.connect() as conn:
            stored = {row.channel: row.ok for row in await conn.execute(select(channel_checks))}
    finally:
        await engine.dispose()
    assert stored == dict.fromkeys(CHECKED, True)


async def login(client: httpx.AsyncClient, username: str, next_page: str = "/console") -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    response = await client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1), "next": next_page}
    )
    assert response.status_code == 303, response.text


async def team(stack: Stack) -> None:
    """A commander with an email address and a phone, an admin nobody can reach, a viewer with email."""
    async with stack.runtime.engine.begin() as conn:
        await create_user(conn, "carol", PASSWORD, "commander", email=COMMANDER, phone="+14155550123")
        await create_user(conn, "ada", PASSWORD, "admin")
        await create_user(conn, "vic", PASSWORD, "viewer", email="vic@example.org")


async def notices(stack: Stack) -> list[dict[str, Any]]:
    async with stack.runtime.engine.connect() as conn:
        rows = await conn.execute(select(deliveries).where(deliveries.c.kind == DeliveryKind.PREFLIGHT.value))
        return [dict(row) for row in rows.mappings()]


def notice_mails(smtp: RecordingSMTP) -> list[Any]:
    return [m for m in smtp.messages if str(m["Subject"]).startswith("[Pre-flight]")]


async def test_a_wrong_twilio_token_and_a_missing_zendesk_section(
    providers: Providers, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = five_channels(providers, database_url, twilio_auth_token="revoked-token", zendesk_section_id="999")
    async with app_stack(settings) as stack:
        await team(stack)

        # 1. the command: non-zero, naming both with the providers' own reasons
        done = await check_command(settings)
        assert done.returncode == 1, done.stdout + done.stderr
        lines = lines_by_channel(done.stdout)
        assert lines["sms"].split()[1] == "FAIL" and "twilio 401 error 20003: Authenticate" in lines["sms"]
        assert lines["zendesk"].split()[1] == "FAIL" and "404" in lines["zendesk"]
        assert "RecordNotFound" in lines["zendesk"] and "/sections/999.json" in lines["zendesk"]
        assert all(lines[name].split()[1] == "ok" for name in ("email", "mastodon", "freshdesk")), done.stdout

        # 2. the API says the same (a second run), in the documented shape
        doc = await served_document(stack.client)
        with caplog.at_level(logging.WARNING, logger="broadcaster.delivery.preflight"):
            answer = await stack.client.get("/api/v1/channels/health", headers=stack.auth)
        conforms(doc, answer)
        health = answer.json()
        assert health["ok"] is False
        by_name = {c["channel"]: c for c in health["channels"]}
        assert set(by_name) == {*CHECKED, *SKIPPED}
        assert by_name["sms"]["ok"] is False and "20003: Authenticate" in by_name["sms"]["reason"]
        assert by_name["zendesk"]["ok"] is False and "RecordNotFound" in by_name["zendesk"]["reason"]
        assert by_name["email"] == by_name["email"] | {"ok": True, "skipped": False, "reason": None}
        assert by_name["webhook"]["skipped"] is True and by_name["webhook"]["ok"] is None
        assert by_name["sms"]["failing_since"] and by_name["sms"]["checked_at"] > by_name["sms"]["failing_since"]
        # the failures began in the first run: this one logs no new warning
        assert [r for r in caplog.records if r.name == preflight.__name__ and r.levelno >= logging.WARNING] == []

        fetches = providers.twilio.account_fetches
        cached = await stack.client.get("/api/v1/channels/health?cached=1", headers=stack.auth)
        conforms(doc, cached)
        assert cached.json() == health and providers.twilio.account_fetches == fetches  # nothing checked
        refused = await stack.client.get("/api/v1/channels/health?cached=maybe", headers=stack.auth)
        assert refused.status_code == 400 and "cached" in refused.json()["error"]["fields"]

        # 3. one notice reached the commanders across the two runs: one mail to carol, none by
        # the broken SMS channel, none to the unreachable admin or the viewer
        mails = notice_mails(providers.smtp)
        assert [m["To"] for m in mails] == [COMMANDER]
        assert "SMS" in mails[0]["Subject"] and "Zendesk Guide" in mails[0]["Subject"]
        body = mails[0].get_body(("plain",)).get_content()
        assert "20003: Authenticate" in body and "RecordNotFound" in body
        assert "http://status.test/console/channels" in body
        sent = await notices(stack)
        assert [(n["channel"], n["recipient"], n["state"]) for n in sent] == [("email", "user:carol", "sent")]
        assert providers.twilio.messages == []

        # 4. the banner, on console pages and on the desk; the channels page has the details
        await login(stack.client, "carol")
        for path in ("/console", "/console/channels", "/desk"):
            page = await stack.client.get(path)
            assert page.status_code == 200, path
            assert "SMS failing its pre-flight check since" in page.text, path
            assert "Zendesk Guide failing its pre-flight check since" in page.text, path
            assert "Authenticate" in page.text and "RecordNotFound" in page.text, path
        channels_page = (await stack.client.get("/console/channels")).text
        assert f"ok: EHLO ok at {providers.smtp.host}:{providers.smtp.port}" in channels_page
        email_row = channels_page.partition('data-channel="email"')[2].partition("</tr>")[0]
        assert re.search(r'class="delivered">\d{4}-\d\d-\d\d', email_row), email_row  # the notice just sent
        assert "skipped" in channels_page.partition('data-channel="webhook"')[2].partition("</tr>")[0]


async def test_one_notice_per_failure_again_only_after_recovery(
    providers: Providers, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = five_channels(providers, database_url)
    providers.twilio.auth_token = "rotated-by-someone"  # the configured token no longer works
    async with app_stack(settings) as stack:
        await team(stack)
        with caplog.at_level(logging.DEBUG, logger="broadcaster.delivery.preflight"):
            for _ in range(3):
                checks = await preflight.run(stack.runtime)
        assert [c.channel for c in checks if c.failing] == ["sms"]
        assert len(notice_mails(providers.smtp)) == 1
        own = [r for r in caplog.records if r.name == preflight.__name__]
        loud = [r.getMessage() for r in own if r.levelno >= logging.INFO]
        assert loud == [
            "channel sms fails its pre-flight check: credentials need attention: twilio 401 error 20003: Authenticate"
        ]
        assert len(own) == 4  # that warning, and one DEBUG summary a run

        providers.twilio.auth_token = settings.extra_values({"twilio_auth_token"})["twilio_auth_token"]
        recovered = {c.channel: c for c in await preflight.run(stack.runtime)}
        assert recovered["sms"].ok is True and recovered["sms"].failing_since is None
        assert preflight.all_ok(recovered.values())
        assert await preflight.failing(stack.runtime) == []
        await login(stack.client, "carol")
        assert "pre-flight check since" not in (await stack.client.get("/console")).text  # no banner once fixed

        providers.twilio.auth_token = "rotated-again"
        await preflight.run(stack.runtime)
        await preflight.run(stack.runtime)
        assert len(notice_mails(providers.smtp)) == 2  # failed anew: told anew, once
        # the notice went by email and SMS would have been avoided: SMS is the broken channel
        assert {n["channel"] for n in await notices(stack)} == {"email"}
