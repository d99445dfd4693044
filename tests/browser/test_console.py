"""The commander console in Chromium: log in, compose from a template, see every channel's
preview, send, and watch the delivery counts reach what the ledger must hold."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from broadcaster.config import Settings
from broadcaster.domain import incident_templates
from broadcaster.domain.users import create_user
from broadcaster.runtime import Runtime
from sandbox.providers.mastodon import MastodonProvider
from sandbox.providers.twilio import TwilioProvider
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings, running_worker

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
async def providers() -> AsyncIterator[dict[str, Any]]:
    twilio, mastodon = TwilioProvider(), MastodonProvider()
    async with serve_app(twilio.app) as twilio_url, serve_app(mastodon.app) as mastodon_url:
        yield {"twilio": twilio, "twilio_url": twilio_url, "mastodon": mastodon, "mastodon_url": mastodon_url}


@pytest.fixture
def settings(database_url: str, clean_database: None, smtp: RecordingSMTP, providers: dict[str, Any]) -> Settings:
    """Email, SMS and Mastodon on top of the always-on channels, each against a local provider."""
    twilio: TwilioProvider = providers["twilio"]
    return make_settings(
        database_url,
        **smtp.settings(),
        twilio_base_url=providers["twilio_url"],
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token,
        twilio_from=next(iter(twilio.senders)),
        sms_rate_per_s=100.0,
        mastodon_base_url=providers["mastodon_url"],
        mastodon_access_token=providers["mastodon"].token,
    )


async def test_compose_from_template_preview_send_and_watch_delivery(
    app: Any, settings: Settings, runtime: Runtime, auth: dict[str, str], smtp: RecordingSMTP, providers: dict[str, Any]
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with runtime.engine.begin() as conn:
        await create_user(conn, "ic", PASSWORD, "commander")
        await incident_templates.seed_templates(conn)
    enabled = sorted(runtime.registry.enabled)
    assert {"email", "sms", "mastodon", "webhook"} <= set(enabled)
    receivers = [WebhookReceiver(), WebhookReceiver()]
    errors: list[str] = []
    async with (
        serve_app(app) as base,
        serve_app(receivers[0].app()) as hook_a,
        serve_app(receivers[1].app()) as hook_b,
        httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as api,
        async_playwright() as p,
    ):
        component = (await api.post("/api/v1/components", json={"name": "Checkout"})).json()
        for receiver, url in zip(receivers, (hook_a, hook_b), strict=True):
            response = await api.post(
                "/api/v1/subscribers", json={"channel": "webhook", "address": f"{url}/hook", "confirmed": True}
            )
            receiver.secret = response.json()["secret"]
        for channel, address in (("email", "fan@example.org"), ("sms", "+15005550009")):
            response = await api.post(
                "/api/v1/subscribers", json={"channel": channel, "address": address, "confirmed": True}
            )
            assert response.status_code == 201, response.text
        chat = {"slack", "teams", "discord", "google_chat"}  # subscriber channels nobody here subscribed to
        expected_totals = {name: 0 if name in chat else 1 for name in enabled} | {"webhook": 2}

        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1100})
            page.on("pageerror", lambda error: errors.append(str(error)))
            # "Failed to load resource" lines are the favicon and previews of half-typed input (422).
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None
                ),
            )
            await page.goto(f"{base}/console")
            assert "/login" in page.url
            await page.fill("#username", "ic")
            await page.fill("#password", PASSWORD)
            await page.press("#password", "Enter")
            await page.wait_for_url(f"{base}/console")
            await expect(page.locator("h1")).to_contain_text("Open incidents")
            await page.screenshot(path=str(ARTIFACTS / "console-1-dashboard.png"), full_page=True)

            # Compose from the "Service outage" template.
            await page.click("text=New incident")
            await page.select_option("#template", label="Service outage")
            await page.click("text=Use template")
            await expect(page.locator("#title")).to_have_value("Service unavailable")
            await expect(page.locator("#talking_points")).to_contain_text("engineers are on it")
            await page.select_option(f"[id='component.{component['id']}']", "major_outage")
            await page.fill(
                "#message", "Checkout is **down** for all customers. We are on it. Next update within 30 minutes."
            )
            send = page.locator("#send")
            for name in enabled:
                await expect(page.locator(f'#previews .preview[data-channel="{name}"]')).to_be_visible()
            await expect(page.locator("#preview-state")).to_contain_text(f"up to date ({len(enabled)} channels)")
            await expect(send).to_be_enabled()
            previews = page.locator("#previews")
            await expect(previews.locator('[data-channel="email"] .subject')).to_contain_text(
                "[Investigating] Service unavailable"
            )
            await expect(previews.locator('[data-channel="sms"] .facts')).to_contain_text("GSM-7")
            await expect(previews.locator('[data-channel="mastodon"] .facts')).to_contain_text("/ 500")
            await expect(previews.locator('[data-channel="sms"] pre.text')).to_contain_text("Checkout is down")

            # Typing makes the preview stale: Send is off until the preview caught up.
            await page.type("#message", " Sorry.")
            await expect(send).to_be_disabled()
            await expect(previews.locator('[data-channel="sms"] pre.text')).to_contain_text("Checkout is down")
            await expect(send).to_be_enabled()
            await page.screenshot(path=str(ARTIFACTS / "console-2-compose-preview.png"), full_page=True)

            async with running_worker(settings):
                await send.click()
                await page.wait_for_url(f"{base}/console/updates/**")
                for name, total in expected_totals.items():
                    row = page.locator(f'#counts tr[data-channel="{name}"]')
                    await expect(row.locator('[data-k="sent"]')).to_have_text(str(total), timeout=15_000)
                    await expect(row.locator('[data-k="total"]')).to_have_text(str(total))
                    await expect(row.locator('[data-k="failed"]')).to_have_text("0")
                await expect(page.locator("#live-state")).to_contain_text("Live")
                await page.screenshot(path=str(ARTIFACTS / "console-3-deliveries.png"), full_page=True)

            await page.goto(f"{base}/console/channels")
            await expect(page.locator("table")).not_to_contain_text("behind")
            await page.screenshot(path=str(ARTIFACTS / "console-4-channels.png"), full_page=True)
        finally:
            await browser.close()
    assert [len(r.received) for r in receivers] == [1, 1]
    assert [r.rcpt_tos for r in smtp.received] == [("fan@example.org",)]
    assert len(providers["twilio"].messages) == 1 and len(providers["mastodon"].statuses) == 1
    assert errors == []
