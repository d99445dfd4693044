"""The agent desk in Chromium: an update posted through the API appears live, without a reload."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from broadcaster.domain.users import create_user
from broadcaster.runtime import Runtime
from sandbox.serve import serve_app
from tests.conftest import run_worker

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def log_in(browser: Browser, base: str, username: str, console: list[str]) -> tuple[Page, Any]:
    page = await browser.new_page(viewport={"width": 1600, "height": 1000})
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    await page.goto(f"{base}/desk")
    assert "/login" in page.url
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation() as navigation:
        await page.click("button[type=submit]")
    return page, await navigation.value


async def test_agent_sees_a_new_update_live(app, settings, runtime: Runtime, auth) -> None:
    async with runtime.engine.begin() as conn:
        await create_user(conn, "ana", PASSWORD, "agent")
        await create_user(conn, "vic", PASSWORD, "viewer")
    console: list[str] = []
    async with (
        serve_app(app) as base,
        httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as api,
        async_playwright() as p,
    ):
        component = (await api.post("/api/v1/components", json={"name": "Checkout", "group": "Web"})).json()
        first = await api.post(
            "/api/v1/incidents",
            json={
                "title": "Checkout failures",
                "status": "investigating",
                "components": {component["id"]: "partial_outage"},
                "message": "Some card payments **fail** at checkout. We are investigating.",
                "agent": {
                    "talking_points": "Ask callers to retry in a few minutes.",
                    "approved_answers": [
                        {"question": "Was I charged twice?", "answer": "No: failed payments are **never** captured."}
                    ],
                    "do_not_say": "Do not name the payment provider.",
                    "escalation": "Merchants losing sales: transfer to Payments on-call (ext. 4410).",
                },
            },
        )
        assert first.status_code == 201, first.text
        incident = first.json()
        await run_worker(settings)

        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page, response = await log_in(browser, base, "ana", console)
            assert response.status == 200 and page.url == f"{base}/desk"
            card = page.locator(f"#incident-{incident['id']}")
            await expect(card.locator(".public-text")).to_contain_text("Some card payments fail at checkout.")
            await expect(page.locator("body")).to_have_attribute("data-live", "on", timeout=5000)
            await page.evaluate("window.__notReloaded = true")

            started = time.monotonic()
            second = await api.post(
                f"/api/v1/incidents/{incident['id']}/updates",
                json={
                    "status": "identified",
                    "message": "We found the cause: an expired certificate. A fix is being deployed.",
                    "agent": {
                        "talking_points": "Tell callers a fix is rolling out; payments resume within the hour.",
                        "approved_answers": [
                            {
                                "question": "Was I charged twice?",
                                "answer": "No: failed payments are **never** captured.",
                            }
                        ],
                        "do_not_say": "Do not name the certificate authority.",
                        "escalation": "Merchants losing sales: transfer to Payments on-call (ext. 4410).",
                    },
                },
            )
            assert second.status_code == 201, second.text
            worker = asyncio.create_task(run_worker(settings))
            await expect(card.locator(".public-text")).to_have_text(
                "We found the cause: an expired certificate. A fix is being deployed.", timeout=2000
            )
            await expect(card.locator(".talking-points")).to_contain_text(
                "Tell callers a fix is rolling out; payments resume within the hour.", timeout=2000
            )
            elapsed_s = time.monotonic() - started
            assert elapsed_s < 2.0, f"the update took {elapsed_s:.2f} s to reach the desk"
            assert await page.evaluate("window.__notReloaded === true"), "the page must not reload"
            await expect(card.locator(".status-identified")).to_be_visible()
            await expect(card.locator(".answers")).to_contain_text("failed payments are never captured")
            await expect(card.locator(".components")).to_contain_text("Web - Checkout: Partial outage")
            await worker
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "desk.png"), full_page=True)

            viewer_page, viewer_response = await log_in(browser, base, "vic", console)
            assert viewer_response.status == 403
            await viewer_page.close()
            await page.close()
        finally:
            await browser.close()
    broken = [line for line in console if "Content Security Policy" in line or line.startswith("pageerror")]
    assert not broken, "the desk must run under its strict CSP without script errors"
