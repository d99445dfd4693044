"""The public page end to end: pages, feeds, JSON, caching, garbage input, one text everywhere."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from broadcaster.render import html_to_text
from broadcaster.runtime import Runtime
from status_page.public.html import assets
from status_page.public.static_export import export_site
from tests.conftest import run_worker

FIELDS = json.loads((Path(__file__).parent.parent / "fixtures" / "statuspage_v2_fields.json").read_text())
TRICKY = (
    "We are investigating **elevated errors** on the API & dashboard (p99 > 2 s).\n\n"
    '- Logins: "slow" but working\n- Payments: not affected — café ☕ works\n\n'
    "Next update in 30 minutes. See [details](https://example.com/x?a=1&b=2)."
)
API_PATHS = [f"/api/v2/{p}" for p in FIELDS["endpoints"]]
PAGE_PATHS = ["/", "/history", "/history/1", "/history.atom", "/history.rss"]


async def seed(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    api = (await client.post("/api/v1/components", headers=auth, json={"name": "API", "group": "Platform"})).json()
    web = (await client.post("/api/v1/components", headers=auth, json={"name": "Website"})).json()
    response = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={
            "title": "API errors",
            "status": "investigating",
            "message": TRICKY,
            "components": {api["id"]: "partial_outage"},
        },
    )
    assert response.status_code == 201, response.text
    return {"api": api, "web": web, "incident": response.json()}


def update_body_html(page: str, update_id: str) -> str:
    match = re.search(rf'id="update-{update_id}".*?<div class="update-body">(.*?)</div>', page, re.S)
    assert match, f"update {update_id} not on the page"
    return match.group(1)


async def wait_for_text(client: httpx.AsyncClient, path: str, text: str, timeout_s: float = 5.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body = (await client.get(path)).text
        if text in body or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_pages_render(client, auth) -> None:
    data = await seed(client, auth)
    incident_id = data["incident"]["id"]
    for path in [*PAGE_PATHS, f"/incidents/{incident_id}"]:
        response = await client.get(path)
        assert response.status_code == 200, path
    home = (await client.get("/")).text
    assert "API errors" in home and "Partial System Outage" in home
    assert 'action="/subscribe"' in home and 'name="components"' in home and data["api"]["id"] in home
    assert '<html lang="en">' in home and 'class="bars"' in home
    assert (await client.get("/incidents/nosuchincident")).status_code == 404
    assert (await client.get("/history/99")).status_code == 404


async def test_security_headers_and_assets(client, auth, settings) -> None:
    await seed(client, auth)
    response = await client.get("/")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'sha256-" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    # The page's CSS is inline, allowed by its hash (never 'unsafe-inline'); the file stays served.
    style = re.search(r"<style>(.*?)</style>", response.text, re.S)
    assert style and ".bars i{" in style.group(1)
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'self' 'sha256-{digest}';" in csp and "unsafe-inline" not in csp
    css = next(url for url in assets(settings.templates_dir) if url.startswith("/assets/status."))
    asset = await client.get(css)
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert asset.text.strip() == style.group(1)
    assert asset.headers["content-type"].startswith("text/css")
    assert (await client.get("/assets/status.000000000000.css")).status_code == 404


async def test_etag_304_and_cache_headers(client, auth) -> None:
    await seed(client, auth)
    for path in ["/", "/api/v2/summary.json", "/history.atom"]:
        first = await client.get(path)
        etag = first.headers["etag"]
        assert "public" in first.headers["cache-control"] and first.headers["last-modified"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        other = await client.get(path, headers={"If-None-Match": '"nope"'})
        assert other.status_code == 200


async def test_gzip_and_identity_agree(client, auth) -> None:
    await seed(client, auth)
    zipped = await client.get("/", headers={"Accept-Encoding": "gzip"})
    plain = await client.get("/", headers={"Accept-Encoding": "identity"})
    assert zipped.headers.get("content-encoding") == "gzip" and "content-encoding" not in plain.headers
    assert zipped.text == plain.text


async def test_api_v2_shapes_head_cors(client, auth) -> None:
    await seed(client, auth)
    for path in API_PATHS:
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["access-control-allow-origin"] == "*"
        body = response.json()
        assert list(body) == FIELDS["endpoints"][path.removeprefix("/api/v2/")]
        head = await client.head(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "application/json"
        assert head.headers["content-length"] == response.headers["content-length"]
    summary = (await client.get("/api/v2/summary.json")).json()
    # components alone say minor; the open incident (impact major, from partial_outage) raises it
    assert summary["status"] == {"indicator": "major", "description": "Partial System Outage"}
    incident = summary["incidents"][0]
    assert list(incident) == FIELDS["incident"]
    assert list(incident["incident_updates"][0]) == FIELDS["incident_update"]
    assert list(incident["components"][0]) == FIELDS["component"]
    assert incident["incident_updates"][0]["affected_components"][0]["name"] == "Platform - API"
    preflight = await client.options("/api/v2/summary.json")
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"


GARBAGE = [
    "page=-1",
    "page=0",
    "page=99999999999999999999999",
    "page=abc",
    "page=",
    "page=1e9",
    "page=%00",
    "page[]=1&page[]=2",
    "page=1&page=2",
    "%ff%fe=%c0%af",
    "a=%",
    "=",
    "&&&",
    "?",
    "x=" + "A" * 5000,
    "callback=alert(1)",
    "q=<script>alert(1)</script>",
    "q='%20OR%201=1--",
    "limit=-5&offset=NaN",
    "%E2%80%AE=1",
    "page=%F0%9F%92%A9",
    "format=json&page=2",
    "__proto__=1",
    "page=0x10",
    "page= 3",
]


async def test_query_string_garbage_never_500(client, auth) -> None:
    data = await seed(client, auth)
    paths = [
        *PAGE_PATHS,
        *API_PATHS,
        f"/incidents/{data['incident']['id']}",
        "/incidents/%00",
        "/incidents/" + "x" * 500,
        "/history/abc",
        "/history/-1",
        "/history/99999999999999999999",
        "/assets/..%2F..%2Fetc%2Fpasswd",
        "/incidents/..%2Fhistory",
    ]
    for path in paths:
        for query in GARBAGE:
            for method in ("GET", "HEAD"):
                response = await client.request(method, f"{path}?{query}")
                assert response.status_code < 500, (method, path, query, response.status_code)
                assert response.status_code in (200, 304, 400, 404), (path, query, response.status_code)


async def test_feeds_parse_without_bozo(client, auth) -> None:
    data = await seed(client, auth)
    await client.post(
        f"/api/v1/incidents/{data['incident']['id']}/updates",
        headers=auth,
        json={"status": "identified", "message": "Found it: a bad \x01 deploy & <rollback>."},
    )
    for path in ["/history.atom", "/history.rss"]:
        body = (await client.get(path)).content
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert len(parsed.entries) == 2
        assert parsed.entries[0].title.startswith("API errors")


async def test_update_text_identical_everywhere(client, auth, settings, runtime: Runtime, tmp_path) -> None:
    data = await seed(client, auth)
    incident_id, update_id = data["incident"]["id"], data["incident"]["update"]["id"]
    page_text = html_to_text(update_body_html((await client.get(f"/incidents/{incident_id}")).text, update_id))
    home_text = html_to_text(update_body_html((await client.get("/")).text, update_id))
    json_text = (await client.get("/api/v2/incidents.json")).json()["incidents"][0]["incident_updates"][0]["body"]
    summary_text = (await client.get("/api/v2/summary.json")).json()["incidents"][0]["incident_updates"][0]["body"]
    atom = feedparser.parse((await client.get("/history.atom")).content).entries[0]
    rss = feedparser.parse((await client.get("/history.rss")).content).entries[0]
    await export_site(settings, runtime.engine, tmp_path)
    static_page = html_to_text(
        update_body_html((tmp_path / "incidents" / f"{incident_id}.html").read_text(), update_id)
    )
    static_home = html_to_text(update_body_html((tmp_path / "index.html").read_text(), update_id))
    static_json = json.loads((tmp_path / "api/v2/summary.json").read_text())["incidents"][0]
    assert "elevated errors on the API & dashboard (p99 > 2 s)." in page_text
    assert "café ☕" in page_text
    texts = {
        "home": home_text,
        "json": json_text,
        "summary": summary_text,
        "atom": html_to_text(atom.content[0].value),
        "rss": html_to_text(rss.description),
        "static page": static_page,
        "static home": static_home,
        "static json": static_json["incident_updates"][0]["body"],
    }
    for where, text in texts.items():
        assert text == page_text, where


async def test_static_export_layout(client, auth, settings, runtime: Runtime, tmp_path) -> None:
    data = await seed(client, auth)
    count = await export_site(settings, runtime.engine, tmp_path)
    incident_id = data["incident"]["id"]
    for relative in [
        "index.html",
        "history.html",
        "history/index.html",
        f"incidents/{incident_id}.html",
        f"incidents/{incident_id}/index.html",
        "history.atom",
        "history.rss",
        "404.html",
        *[f"api/v2/{p}" for p in FIELDS["endpoints"]],
    ]:
        assert (tmp_path / relative).is_file(), relative
    assert count >= 17
    style = re.search(r"<style>(.*?)</style>", (tmp_path / "index.html").read_text(), re.S)
    assert style and next(iter(tmp_path.glob("assets/status.*.css"))).read_text().strip() == style.group(1)
    assert "<body data-live" not in (tmp_path / "index.html").read_text()
    assert not list(tmp_path.rglob("*.tmp"))


async def test_new_update_reaches_cached_page_and_ledger(client, auth, settings, runtime: Runtime) -> None:
    data = await seed(client, auth)
    incident_id = data["incident"]["id"]
    assert "Rolled back" not in (await client.get("/")).text  # now cached
    summary_before = (await client.get("/api/v2/summary.json")).headers["etag"]
    response = await client.post(
        f"/api/v1/incidents/{incident_id}/updates",
        headers=auth,
        json={"status": "monitoring", "message": "Rolled back; error rates are normal."},
    )
    assert response.status_code == 201
    assert "Rolled back" in await wait_for_text(client, "/", "Rolled back")
    assert (await client.get("/api/v2/summary.json")).headers["etag"] != summary_before
    await run_worker(settings)
    counts = (await client.get(f"/api/v1/updates/{response.json()['id']}/deliveries", headers=auth)).json()
    assert counts["status_page"] == {"pending": 0, "sent": 1, "failed": 0, "total": 1}
    channels = (await client.get("/api/v1/channels", headers=auth)).json()
    assert channels["status_page"]["enabled"] is True
    assert channels["status_page"]["current_update"]["update_id"] == response.json()["id"]


async def test_published_event_invalidates(app, client, auth, runtime: Runtime) -> None:
    await seed(client, auth)
    await client.get("/")
    cache = app.state.page_cache
    generation = cache.generation
    await asyncio.sleep(0.2)  # the bus listener is subscribed by now
    await runtime.bus.publish("published", {"incident_id": "x", "update_id": "y", "channel": "status_page"})
    for _ in range(100):
        if cache.generation > generation:
            break
        await asyncio.sleep(0.02)
    assert cache.generation > generation


@pytest.mark.parametrize("path", ["/", "/api/v2/summary.json"])
async def test_empty_page(client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    if path == "/":
        assert "All Systems Operational" in response.text
    else:
        assert response.json()["status"]["indicator"] == "none"
