"""The public page in Chromium: an update posted through the API appears within 2 s, without a reload."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from broadcaster.runtime import Runtime
from sandbox.serve import serve_app
from tests.conftest import running_worker

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def test_update_appears_live(app, settings, runtime: Runtime, auth) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    console: list[str] = []
    async with (
        running_worker(settings),
        serve_app(app) as base,
        httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as api,
        async_playwright() as p,
    ):
        api_component = (await api.post("/api/v1/components", json={"name": "API", "group": "Platform"})).json()
        await api.post("/api/v1/components", json={"name": "Website"})
        created = await api.post(
            "/api/v1/incidents",
            json={
                "title": "Elevated API errors",
                "status": "investigating",
                "components": {api_component["id"]: "partial_outage"},
                "message": "Some API requests **fail**. We are investigating.",
            },
        )
        assert created.status_code == 201, created.text
        incident = created.json()

        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
            await page.goto(f"{base}/")
            await expect(page.locator(".banner")).to_have_text("Partial System Outage")
            await expect(page.locator("body")).to_have_attribute("data-live-state", "on", timeout=5000)
            assert len(requests) <= 2, requests  # the page (its CSS and script inline), live events
            await expect(page.locator("time .local").first).to_contain_text("your time")
            await page.evaluate("window.__notReloaded = true")

            started = time.monotonic()
            posted = await api.post(
                f"/api/v1/incidents/{incident['id']}/updates",
                json={
                    "status": "identified",
                    "components": {api_component["id"]: "degraded_performance"},
                    "message": "The cause is a **faulty failover**; a fix is being deployed.",
                },
            )
            assert posted.status_code == 201, posted.text
            update = page.locator(f"#update-{posted.json()['id']} .update-body")
            await expect(update).to_have_text("The cause is a faulty failover; a fix is being deployed.", timeout=2000)
            elapsed_s = time.monotonic() - started
            assert elapsed_s < 2.0
            assert await page.evaluate("window.__notReloaded") is True, "the page reloaded"
            await expect(page.locator(".banner")).to_have_text("Partial System Outage")
            await page.screenshot(path=str(ARTIFACTS / "status_page_live.png"), full_page=True)

            narrow = await browser.new_page(viewport={"width": 320, "height": 800})
            await narrow.goto(f"{base}/")
            width = await narrow.evaluate("document.documentElement.scrollWidth")
            assert width <= 320, f"horizontal scroll at 320 px: {width}"
            await narrow.screenshot(path=str(ARTIFACTS / "status_page_320px.png"), full_page=True)

            no_js = await browser.new_context(java_script_enabled=False)
            plain = await no_js.new_page()
            await plain.goto(f"{base}/incidents/{incident['id']}")
            await expect(plain.locator(f"#update-{posted.json()['id']} .update-body")).to_contain_text(
                "faulty failover"
            )
            await no_js.close()
        finally:
            await browser.close()
    problems = [line for line in console if line.startswith(("error", "pageerror"))]
    assert not problems, problems
    print(f"update visible after {elapsed_s:.2f} s")
