"""Hostile markdown is neutralised on every surface that shows it: page, feeds, APIs, email, desk."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from status_page.app import create_app
from tests.conftest import make_settings
from tests.security.helpers import login

HOSTILE = (
    'Hello <script>alert("xss-script")</script> and <img src=x onerror="alert(1)"> '
    '[click](javascript:alert("xss-link")) <a href="javascript:alert(2)">a</a> '
    '<iframe src="https://evil.example"></iframe> <svg onload=alert(3)></svg> '
    '<a href="#" style="background:url(javascript:alert(4))">styled</a>'
)
# What must never reach a browser or a mail client as markup.
DANGEROUS = [
    re.compile(r"<script[^>]*>\s*alert", re.I),
    re.compile(r"<[^>]+\son\w+\s*=", re.I),  # onerror=, onload= inside a tag
    re.compile(r"""<[^>]+(href|src)\s*=\s*["']?\s*javascript:""", re.I),
    re.compile(r"<iframe", re.I),
    re.compile(r"<svg[^>]*onload", re.I),
    re.compile(r"""style\s*=\s*["'][^"']*javascript:""", re.I),
]


def assert_clean(surface: str, text: str) -> None:
    for pattern in DANGEROUS:
        match = pattern.search(text)
        assert match is None, f"{surface}: {match.group(0)!r}"


def html_fields(data: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a JSON document that is HTML: keys naming html, or values that look like markup."""
    found: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and ("html" in str(key).lower() or value.lstrip().startswith("<")):
                found.append((f"{path} {key}".strip(), value))
            else:
                found.extend(html_fields(value, f"{path} {key}".strip()))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(html_fields(value, f"{path} {index}".strip()))
    return found


@pytest.fixture
async def email_client(database_url: str, clean_database: None) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=2525, email_from="status@example.com")
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
        ):
            yield client, runtime
    finally:
        await runtime.aclose()


async def test_hostile_markdown_is_sanitized_everywhere(email_client: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = email_client
    async with runtime.engine.begin() as conn:
        auth = {"Authorization": f"Bearer {await create_token(conn, 'sec')}"}
    body: dict[str, Any] = {
        "title": 'Outage <script>alert("title")</script>',
        "status": "investigating",
        "impact": "major",
        "message": HOSTILE,
        "agent": {"talking_points": HOSTILE, "do_not_say": HOSTILE},
    }
    created = await client.post("/api/v1/incidents", headers=auth, json=body)
    assert created.status_code == 201, created.text
    incident = created.json()
    assert_clean("API v1 body_html", incident["update"]["body_html"])

    surfaces = {
        path: (await client.get(path)).text
        for path in ("/", f"/incidents/{incident['id']}", "/history", "/history.atom", "/history.rss")
    }
    # JSON is data (plain-text fields are the client's to escape); every HTML field must be clean.
    for path in ("/api/v2/incidents.json", "/api/v2/summary.json", f"/api/v1/incidents/{incident['id']}"):
        for key, value in html_fields((await client.get(path, headers=auth)).json()):
            surfaces[f"{path} {key}"] = value
    previews = (await client.post("/api/v1/preview", headers=auth, json=body)).json()
    assert "email" in previews, previews.keys()
    for key, value in html_fields(previews):
        surfaces[f"preview {key}"] = value
    assert any(key.startswith("preview email") for key in surfaces), surfaces.keys()
    await login(client, runtime, "agent1", "agent")
    surfaces["/desk"] = (await client.get("/desk", headers={"accept": "text/html"})).text
    surfaces["/desk/search"] = (
        await client.get("/desk/search", params={"q": "outage"}, headers={"accept": "text/html"})
    ).text
    print("\nsurfaces checked:", ", ".join(sorted(surfaces)))
    for surface, text in surfaces.items():
        assert_clean(surface, text)
    # The words survive as text: sanitizing is not deleting the update.
    assert "Hello" in surfaces[f"/incidents/{incident['id']}"]
    assert "Hello" in surfaces["/desk"]


def test_the_patterns_catch_raw_markup() -> None:
    """The detector itself: it would catch the payload were it passed through unsanitized."""
    with pytest.raises(AssertionError):
        assert_clean("raw", HOSTILE)
