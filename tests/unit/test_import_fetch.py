"""broadcaster.importing.fetch: a source's answers become JSON or one clear ``SourceError``; the key never shows."""

from __future__ import annotations

import io

import httpx
import pytest

from broadcaster.importing import fetch
from broadcaster.importing.fetch import JsonSource, SourceError
from broadcaster.importing.progress import Bar, Lines

KEY = "OAuth s3cret-key-value"


def source(handler: httpx.MockTransport) -> JsonSource:
    return JsonSource("Statuspage", "https://api.example.test", {"Authorization": KEY}, transport=handler)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "MAX_WAIT_S", 0.0)


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "refused the credentials (HTTP 401)"), (404, "has nothing at"), (400, "answered HTTP 400")],
)
async def test_a_refusal_is_one_error_naming_what_was_asked_and_never_the_key(status: int, words: str) -> None:
    async with source(httpx.MockTransport(lambda r: httpx.Response(status, json={"error": "no"}))) as s:
        with pytest.raises(SourceError) as caught:
            await s.get("/v1/pages/abc")
    assert words in str(caught.value) and "GET https://api.example.test/v1/pages/abc" in str(caught.value)
    assert "s3cret" not in str(caught.value) and caught.value.status == status


async def test_429_and_5xx_are_retried_then_given_up() -> None:
    seen: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        assert request.headers["authorization"] == KEY
        if len(seen) == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        if len(seen) == 2:
            return httpx.Response(503)
        return httpx.Response(200, json=[1, 2])

    async with source(httpx.MockTransport(answer)) as s:
        assert await s.get("/x") == [1, 2]
    async with source(httpx.MockTransport(lambda r: httpx.Response(502))) as s:
        with pytest.raises(SourceError, match="HTTP 502"):
            await s.get("/x")


async def test_transport_failures_and_garbage_are_clear() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async with source(httpx.MockTransport(refuse)) as s:
        with pytest.raises(SourceError, match=r"could not reach Statuspage at https://api.example.test: ConnectError"):
            await s.get("/x")
    async with source(httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))) as s:
        with pytest.raises(SourceError, match="not JSON"):
            await s.get("/x")
    with pytest.raises(SourceError, match="not an http"):
        JsonSource("Cachet", "ftp://example.test")


async def test_pages_stop_at_a_short_page() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["page"])
        page = int(request.url.params["page"])
        return httpx.Response(200, json=list(range(2)) if page < 2 else [9])

    async with source(httpx.MockTransport(answer)) as s:
        pages = [p async for p in s.pages("/list", first=0, per_page=2)]
    assert pages == [[0, 1], [0, 1], [9]] and asked == ["0", "1", "2"]


def test_progress_draws_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    out = io.StringIO()
    bar = Bar(out)
    bar.begin("writing subscribers", 4)
    bar.advance(2)
    bar.end()
    assert "\r" in out.getvalue() and "[###############...............] 2/4" in out.getvalue()
    plain = io.StringIO()
    lines = Lines(plain)
    lines.begin("fetching incidents")
    lines.advance(30)
    lines.end()
    assert plain.getvalue() == "fetching incidents: 30\n"
