"""The public pages in Chromium with a brand, an active incident, a maintenance and the contact
banner: axe-core finds no serious or critical violation, the live region announces a new update,
the banner comes and goes live, and the first visit stays within its request and byte budget."""

from __future__ import annotations

import base64
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from broadcaster.db import utcnow
from broadcaster.delivery.fanout import recipient_links
from broadcaster.domain.page_brand import MAX_FAVICON_BYTES, MAX_LOGO_BYTES
from broadcaster.security import LinkSigner
from sandbox.serve import serve_app
from tests.browser.test_status_page_live import ARTIFACTS, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
LOGO = b"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 32" width="120" height="32">
<title>ACME</title><rect width="32" height="32" rx="6" fill="#0b5cad"/><path d="M8 24 16 8l8 16z" fill="#fff"/>
<text x="40" y="23" font-family="sans-serif" font-size="18" fill="#172b4d">ACME</text></svg>"""
# 10 KB of distinct rules (repeated ones would compress to nothing and flatter the budget).
CUSTOM_CSS = "\n".join(
    f".c{i} .x{i * 7 % 97}{{margin:{i % 9}px {i % 5}px;color:#{i * 2654435761 % 0xFFFFFF:06x}}}" for i in range(256)
)
JAMMED = [
    {"name": "Phone", "state": "busy", "note": "Lines are jammed; use chat"},
    {"name": "Chat", "state": "open", "url": "https://acme.example/chat"},
]


def png_of(size: int) -> bytes:
    """A PNG signature and header, then noise up to ``size`` bytes (what gzip cannot shrink)."""
    head = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x40" * 2 + b"\x08\x06\x00\x00\x00"
    return head + os.urandom(size - len(head))


MAX_REQUESTS = 3  # the page (its own CSS inline), the brand's stylesheet (accent + custom CSS), live events
MAX_WIRE_BYTES = 40 * 1024


async def seed(api: httpx.AsyncClient) -> dict[str, Any]:
    brand = {
        "name": "ACME Status",
        "accent_color": "#0b5cad",
        "links": [
            {"label": "Support", "url": "https://help.acme.example"},
            {"label": "Terms", "url": "https://acme.example/t"},
        ],
        "logo": "data:image/svg+xml;base64," + base64.b64encode(LOGO).decode(),
        "custom_css": CUSTOM_CSS,
    }
    assert (await api.patch("/api/v1/page", json=brand)).status_code == 200
    component = (await api.post("/api/v1/components", json={"name": "API", "group": "Platform"})).json()
    await api.post("/api/v1/components", json={"name": "Website"})
    incident = (
        await api.post(
            "/api/v1/incidents",
            json={
                "title": "Elevated API errors",
                "status": "investigating",
                "components": {component["id"]: "partial_outage"},
                "message": "Some API requests **fail**. We are investigating.",
            },
        )
    ).json()
    start = utcnow() + timedelta(hours=2)
    maintenance = await api.post(
        "/api/v1/incidents",
        json={
            "title": "Database upgrade",
            "kind": "maintenance",
            "status": "scheduled",
            "message": "The database moves to a new version.",
            "scheduled_for": start.isoformat(),
            "scheduled_until": (start + timedelta(hours=1)).isoformat(),
        },
    )
    assert maintenance.status_code == 201, maintenance.text
    assert (await api.put("/api/v1/page/contact-channels", json={"channels": JAMMED})).status_code == 200
    subscriber = await api.post(
        "/api/v1/subscribers", json={"channel": "email", "address": "a11y@example.org", "confirmed": True}
    )
    return {"incident": incident, "subscriber": subscriber.json()}


async def axe_counts(browser: Browser, url: str) -> dict[str, list[str]]:
    """axe-core's violations on ``url`` by impact (the CSP is bypassed to inject it, only here)."""
    context = await browser.new_context(bypass_csp=True)
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.add_script_tag(path=str(AXE))
        results = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        assert len(results["passes"]) > 20, "axe-core ran its rules"
    finally:
        await context.close()
    found: dict[str, list[str]] = {"minor": [], "moderate": [], "serious": [], "critical": []}
    for violation in results["violations"]:
        found[violation["impact"]].append(f"{violation['id']} ({len(violation['nodes'])}): {violation['help']}")
    return found


async def first_visit(browser: Browser, url: str) -> tuple[list[str], int, Page]:
    """The requests a cold first visit makes and the bytes they take on the wire."""
    context = await browser.new_context()
    page = await context.new_page()
    urls: list[str] = []
    finished: list[Any] = []
    page.on("request", lambda r: urls.append(r.url) if r.url.startswith("http") else None)
    page.on("requestfinished", lambda r: finished.append(r))
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-live-state", "on", timeout=5000)
    wire = 0
    for request in finished:
        sizes = await request.sizes()
        wire += sizes["responseBodySize"] + sizes["responseHeadersSize"] + sizes["requestHeadersSize"]
    return urls, wire, page


async def test_public_pages_are_accessible_and_live(app, settings, auth) -> None:
    assert AXE.is_file(), "axe-core is missing: npm ci --prefix tests/browser (scripts/test.sh does it)"
    ARTIFACTS.mkdir(exist_ok=True)
    console: list[str] = []
    async with (
        serve_app(app) as base,
        httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as api,
        async_playwright() as p,
    ):
        seeded = await seed(api)
        incident = seeded["incident"]
        _, manage = recipient_links(
            settings, LinkSigner(settings.secret_key.get_secret_value()), seeded["subscriber"]["id"]
        )
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            counts = {}
            for path in (
                "/",
                f"/incidents/{incident['id']}",
                "/history",
                "/subscribe",
                manage[len(settings.public_url) :],
            ):
                found = await axe_counts(browser, f"{base}{path}")
                counts[path.split("?")[0]] = {impact: len(ids) for impact, ids in found.items()}
                assert not found["serious"] and not found["critical"], (path, found)
            for path, by_impact in counts.items():
                print(f"axe-core {path}: {by_impact}")

            urls, wire, page = await first_visit(browser, f"{base}/")
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            print(f"first visit: {len(urls)} requests, {wire} bytes on the wire: {[u[len(base) :] for u in urls]}")
            assert len(urls) <= MAX_REQUESTS, urls
            assert wire <= MAX_WIRE_BYTES, wire
            await expect(page.locator("header.site img.logo")).to_be_visible()
            accent = await page.evaluate("getComputedStyle(document.querySelector('footer a')).color")
            assert accent == "rgb(11, 92, 173)", "the brand stylesheet is allowed by the CSP and applied"
            await expect(page.locator("#contact-now")).to_contain_text("Phone: Busy. Lines are jammed; use chat")
            await expect(page.locator("#upcoming-heading")).to_have_text("Scheduled maintenance")
            await page.screenshot(path=str(ARTIFACTS / "status_page_branded.png"), full_page=True)

            note = page.locator("#live-note")
            assert await note.get_attribute("aria-live") == "polite" and await note.text_content() == ""
            posted = await api.post(
                f"/api/v1/incidents/{incident['id']}/updates",
                json={"status": "identified", "message": "A faulty failover; the fix is rolling out."},
            )
            assert posted.status_code == 201
            await expect(note).to_have_text("New update on Elevated API errors: Identified.", timeout=2000)

            started = time.monotonic()
            open_again = [{**c, "state": "open", "note": ""} for c in JAMMED]
            assert (await api.put("/api/v1/page/contact-channels", json={"channels": open_again})).status_code == 200
            await expect(page.locator("#contact-now section")).to_have_count(0, timeout=2000)
            await expect(note).to_have_text("How to reach us has changed.")
            assert (await api.put("/api/v1/page/contact-channels", json={"channels": JAMMED})).status_code == 200
            await expect(page.locator("#contact-now")).to_contain_text("Lines are jammed", timeout=2000)
            print(f"banner gone and back, live, in {time.monotonic() - started:.2f} s")
        finally:
            await browser.close()

        # The worst case the caps allow: a logo and a favicon at their limits, incompressible.
        largest = {
            which: "data:image/png;base64," + base64.b64encode(png_of(size)).decode()
            for which, size in (("logo", MAX_LOGO_BYTES), ("favicon", MAX_FAVICON_BYTES))
        }
        assert (await api.patch("/api/v1/page", json=largest)).status_code == 200
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            urls, wire, _ = await first_visit(browser, f"{base}/")
        finally:
            await browser.close()
        print(f"first visit with the largest logo and favicon: {len(urls)} requests, {wire} bytes on the wire")
        assert len(urls) <= MAX_REQUESTS and wire <= MAX_WIRE_BYTES, (urls, wire)
    problems = [line for line in console if line.startswith("error")]
    assert not problems, problems
