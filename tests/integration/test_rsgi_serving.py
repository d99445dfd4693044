"""``broadcaster serve`` on granian (RSGI: the cached GETs answered natively, the rest bridged to
ASGI) answers every kind of request as uvicorn (plain ASGI) does: same status, same headers
(but the server's own ``server``, ``date`` and ``connection``), same body."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from tests.conftest import make_settings
from tests.support.web_process import EventStream, WebProcess

SERVER_OWN = {"server", "date", "connection"}  # the server's own framing and clock

# (method, path, headers, body): the fast path's hits and misses, the bridge's bodies and limits.
REQUESTS: list[tuple[str, str, dict[str, Any], bytes | None]] = [
    ("GET", "/", {}, None),
    ("GET", "/", {"Accept-Encoding": "gzip"}, None),
    ("HEAD", "/", {}, None),
    ("GET", "/", {"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.5"}, None),
    ("GET", "/?lang=de", {}, None),
    ("GET", "/", {"Cookie": "other=1; broadcaster_lang=es"}, None),
    ("GET", "/api/v2/summary.json", {}, None),
    ("GET", "/api/v2/summary.json", {"Accept-Encoding": "gzip, deflate, br"}, None),
    ("HEAD", "/api/v2/status.json", {}, None),
    ("OPTIONS", "/api/v2/summary.json", {"Origin": "https://example.com"}, None),
    ("GET", "/history.atom", {}, None),
    ("GET", "/history", {}, None),
    ("GET", "/incidents/nope", {}, None),
    ("GET", "/no/such/page", {"X-Note": "caf\u00e9".encode()}, None),
    ("GET", "/api/v1/incidents", {}, None),  # no token: 401
    ("POST", "/api/v1/incidents", {"Content-Type": "application/json"}, b'{"title": 1}'),  # no token
    ("POST", "/api/v1/incidents", {"Content-Type": "application/json", "Authorization": "Bearer {token}"}, b"{"),
    (
        "POST",
        "/api/v1/incidents",
        {"Content-Type": "application/json", "Authorization": "Bearer {token}"},
        b'{"title": "", "status": "investigating"}',
    ),
    ("POST", "/api/v1/components", {"Authorization": "Bearer {token}"}, b"x" * 70_000),  # over the 64 KiB limit
    ("GET", "/healthz", {}, None),
]


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    own = SERVER_OWN | ({"content-length"} if response.status_code in (204, 304) else set())  # framing: no body
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k not in own)
    return response.status_code, headers, response.content


async def _ask(client: httpx.AsyncClient, token: str, request: tuple[str, str, dict[str, Any], bytes | None]) -> Any:
    method, path, headers, body = request
    headers = {k: v.replace("{token}", token) if isinstance(v, str) else v for k, v in headers.items()}
    if "Accept-Encoding" not in headers:
        headers["Accept-Encoding"] = "identity"
    try:
        response = await client.request(method, path, headers=headers, content=body)
    except httpx.HTTPError as exc:
        raise AssertionError(f"{client.base_url} {method} {path}: {exc!r}") from exc
    client.cookies.clear()  # each request stands alone (the ?lang= one sets a cookie)
    return _comparable(response)


async def _open_incident(client: httpx.AsyncClient, token: str, title: str) -> str:
    body = {"title": title, "status": "investigating", "message": "Looking.", "channels": ["status_page"]}
    created = await client.post("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"}, json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.fixture
async def two_servers(database_url: str, clean_database: None, tmp_path: Path) -> Any:
    settings = make_settings(database_url)
    runtime = Runtime.build(settings)
    async with runtime.engine.begin() as conn:
        token = await create_token(conn, "rsgi-check")
    servers = [WebProcess(settings, tmp_path / f"{name}.log", server=name) for name in ("granian", "uvicorn")]
    try:
        for server in servers:
            server.start()
        await asyncio.gather(*(server.wait_healthy() for server in servers))
        yield token, servers
    finally:
        for server in servers:
            server.stop()
        await runtime.aclose()


async def test_granian_rsgi_answers_as_uvicorn_asgi(two_servers: Any) -> None:
    token, (granian, uvicorn) = two_servers
    async with (
        httpx.AsyncClient(base_url=granian.url, timeout=10) as on_granian,
        httpx.AsyncClient(base_url=uvicorn.url, timeout=10) as on_uvicorn,
    ):
        await _open_incident(on_granian, token, "Checkout is slow")
        await asyncio.sleep(0.5)  # both processes heard the change and rebuilt their page
        for request in REQUESTS:
            for _ in range(2):  # once to build (the bridge), once from the cache (the fast path)
                seen_granian = await _ask(on_granian, token, request)
                seen_uvicorn = await _ask(on_uvicorn, token, request)
                assert seen_granian == seen_uvicorn, (request[:2], set(seen_granian[1]) ^ set(seen_uvicorn[1]))
        first = await on_granian.get("/", headers={"Accept-Encoding": "identity"})
        again = await on_granian.get(
            "/", headers={"If-None-Match": first.headers["etag"], "Accept-Encoding": "identity"}
        )
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == first.headers["etag"]
        assert "content-security-policy" in again.headers


async def test_live_stream_over_the_bridge(two_servers: Any) -> None:
    token, (granian, _) = two_servers
    stream = EventStream(granian.url)
    async with stream.open(), httpx.AsyncClient(base_url=granian.url, timeout=10) as api:
        incident_id = await _open_incident(api, token, "Login fails")
        await stream.wait_for("update", 10, incident_id=incident_id)
