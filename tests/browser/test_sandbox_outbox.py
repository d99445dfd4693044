"""The sandbox outbox in Chromium: an update sent from the console shows on every channel within 2 s.

The sandbox runs as ``broadcaster up`` runs it (``python -m sandbox``, a child process); the
app is configured only by ``sandbox.config.channel_environment``, so what the outbox shows is
what the real channels sent to the local providers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from broadcaster.config import Settings
from broadcaster.domain.users import create_user
from broadcaster.runtime import Runtime
from sandbox import config
from sandbox.config import WEBHOOK_DEMO_PATH
from sandbox.serve import serve_app
from tests.support.sandbox_process import Running, sandbox_settings, start_sandbox
from tests.support.timing import bound
from tests.support.worker_process import WorkerProcess

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTBOX_CHANNELS = ("email", "sms", "mastodon", "bluesky", "x", "zendesk", "freshdesk", "webhook")
CHAT_CHANNELS = ("slack", "slack_bot", "teams", "discord", "discord_forum", "google_chat")


@pytest.fixture
def sandbox() -> Iterator[Running]:
    running = start_sandbox()
    yield running
    running.stop()


@pytest.fixture
def settings(database_url: str, clean_database: None, sandbox: Running) -> Settings:
    return sandbox_settings(database_url, sandbox, sms_rate_per_s=100.0)


async def test_an_update_sent_from_the_console_reaches_every_channel_in_the_outbox(
    app: Any, settings: Settings, runtime: Runtime, auth: dict[str, str], sandbox: Running, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with runtime.engine.begin() as conn:
        await create_user(conn, "ic", PASSWORD, "commander")
    assert {*OUTBOX_CHANNELS, *CHAT_CHANNELS} <= set(runtime.registry.enabled)
    errors: list[str] = []
    async with (
        serve_app(app) as base,
        httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as api,
        async_playwright() as p,
    ):
        for channel, address in (
            ("email", "dana@example.com"),
            ("sms", "+14155550100"),
            ("webhook", sandbox.base_url + WEBHOOK_DEMO_PATH),
            ("slack", sandbox.base_url + config.SLACK_DEMO_PATH),
            ("teams", sandbox.base_url + config.TEAMS_DEMO_PATH),
            ("discord", sandbox.base_url + config.DISCORD_DEMO_PATH),
            ("google_chat", sandbox.base_url + config.GOOGLE_CHAT_DEMO_PATH),
        ):
            response = await api.post(
                "/api/v1/subscribers", json={"channel": channel, "address": address, "confirmed": True}
            )
            assert response.status_code == 201, response.text
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            outbox, console = await context.new_page(), await context.new_page()
            for tab in (outbox, console):
                tab.on("pageerror", lambda error: errors.append(str(error)))
            await outbox.goto(f"{base}/console/sandbox")
            await outbox.fill("#username", "ic")
            await outbox.fill("#password", PASSWORD)
            await outbox.press("#password", "Enter")
            await outbox.wait_for_url(f"{base}/console/sandbox")
            await expect(outbox.locator(".sandbox-banner")).to_contain_text("nothing leaves this machine")
            for name in (*OUTBOX_CHANNELS, *CHAT_CHANNELS):
                await expect(outbox.locator(f'.count[data-channel="{name}"]')).to_have_text("0")

            await console.goto(f"{base}/console/compose")
            await console.fill("#title", "Card payments failing")
            await console.fill("#message", "Card payments fail for some customers. Next update within 30 minutes.")
            await expect(console.locator("#send")).to_be_enabled()
            worker = WorkerProcess(settings, tmp_path / "worker.log")  # a process of its own, as `up` runs it
            worker.start()
            try:
                await worker.until_started()
                sent_at = time.monotonic()
                await console.click("#send")
                for name in (*OUTBOX_CHANNELS, *CHAT_CHANNELS):
                    await expect(outbox.locator(f'.count[data-channel="{name}"]')).to_have_text(
                        "1", timeout=bound(2.0) * 1000
                    )
                shown_s = time.monotonic() - sent_at
            finally:
                worker.stop()
            print(f"every channel in the sandbox outbox {shown_s:.2f} s after Send")
            assert shown_s <= bound(2.0)
            email = outbox.locator("#sandbox-email .sandbox-item")
            await expect(email).to_contain_text("Card payments failing")
            await expect(email).to_contain_text("List-Unsubscribe")
            await expect(outbox.locator("#sandbox-sms")).to_contain_text("GSM-7, 1 segment")
            await expect(outbox.locator("#sandbox-webhook")).to_contain_text("signature verified")
            for name in ("mastodon", "bluesky", "x"):
                await expect(outbox.locator(f"#sandbox-{name} .post-text")).to_contain_text("Card payments fail")
            for name in ("zendesk", "freshdesk"):
                await expect(outbox.locator(f"#sandbox-{name}")).to_contain_text("revision 1")
            for name in CHAT_CHANNELS:
                await expect(outbox.locator(f"#sandbox-{name} .sandbox-item").first).to_contain_text("Card payments")
            await outbox.set_viewport_size({"width": 1400, "height": 3400})  # iframes paint only in the viewport
            await outbox.screenshot(path=str(ARTIFACTS / "sandbox-outbox.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == []
