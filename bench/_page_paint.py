"""First contentful paint of ``/`` in headless Chromium: the app against nginx serving the export.

Each sample is a new browser context (nothing cached: a first visit), the two servers taking
turns so that load from elsewhere hits both alike; the figure is the paint timing Chromium
itself reports (``performance.getEntriesByName('first-contentful-paint')``), with the number of
requests and bytes the visit took. Needs Debian's ``chromium`` and the ``playwright`` package.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FCP_JS = "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"


async def _visit(browser: Any, url: str) -> tuple[float, int, int]:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        sizes: list[int] = []

        async def count(response: Any) -> None:
            try:
                sizes.append(len(await response.body()))
            except Exception:  # a response without a body (a redirect, an event stream)
                sizes.append(0)

        page.on("response", lambda response: asyncio.ensure_future(count(response)))
        await page.goto(url, wait_until="load")
        fcp = None
        for _ in range(50):  # the paint entry lands just after load on a slow machine
            fcp = await page.evaluate(FCP_JS)
            if fcp is not None:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        return float(fcp or "nan"), len(sizes), sum(sizes)
    finally:
        await context.close()


async def _measure(urls: dict[str, str], samples: int) -> dict[str, dict[str, float]]:
    from playwright.async_api import async_playwright

    found: dict[str, list[tuple[float, int, int]]] = {name: [] for name in urls}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for url in urls.values():  # one visit each first: Chromium's own start-up is not a page's
                await _visit(browser, url)
            for _ in range(samples):
                for name, url in urls.items():
                    found[name].append(await _visit(browser, url))
        finally:
            await browser.close()
    return {
        name: {
            "fcp_ms": statistics.median(s[0] for s in runs),
            "requests": runs[-1][1],
            "bytes": runs[-1][2],
        }
        for name, runs in found.items()
    }


def measure(urls: dict[str, str], samples: int = 7) -> dict[str, dict[str, float]] | None:
    """Median FCP per server (None when Chromium or Playwright is missing)."""
    if shutil.which(CHROMIUM) is None:
        return None
    try:
        import playwright  # noqa: F401
    except ImportError:
        return None
    return asyncio.run(_measure(urls, samples))


def report(results: dict[str, dict[str, float]] | None, reference: str) -> None:
    """Print the FCP lines and the ratio to ``reference`` (the static file)."""
    if results is None:
        print("\nfirst paint: skipped (needs /usr/bin/chromium and playwright)")
        return
    base = results[reference]["fcp_ms"]
    print(f"\n{'first visit in Chromium':<28} {'FCP ms':>8} {'ratio':>7} {'requests':>9} {'bytes':>8}")
    for name, r in results.items():
        ratio = r["fcp_ms"] / base if base else float("nan")
        print(f"{name:<28} {r['fcp_ms']:>8.1f} {ratio:>7.2f} {int(r['requests']):>9} {int(r['bytes']):>8}")
    print("FCP target: app <= 1.2x the static file's, and < 100 ms on a quiet machine (median of the samples).")
