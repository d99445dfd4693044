"""The event stream on real Redis: nothing lost across a dropped connection, quiet when idle,
``Last-Event-ID`` replays what a client missed, and a closing process ends its streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from broadcaster.events import RESYNC, EventBus, id_key
from broadcaster.runtime import Runtime
from sandbox.serve import serve_app
from status_page.live import LiveEvents, _stream, live_events
from tests.conftest import REDIS_URL
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
async def stream_name() -> AsyncIterator[str]:
    name = f"broadcaster:test-events:{uuid.uuid4().hex[:10]}"
    yield name
    bus = EventBus(REDIS_URL, stream=name)
    await bus._redis().delete(name)
    await bus.aclose()


async def test_reader_reads_on_after_a_lost_connection(stream_name: str, caplog: pytest.LogCaptureFixture) -> None:
    host, port = REDIS_URL.split("//")[1].split("/")[0].split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    publisher = EventBus(REDIS_URL, stream=stream_name)
    listener = EventBus(f"redis://127.0.0.1:{proxy.port}/0", stream=stream_name, block_ms=200)
    reader = listener.listen()
    try:
        first = asyncio.ensure_future(anext(reader))
        await asyncio.sleep(0.3)  # reading (blocked) from "now"
        await publisher.publish("update", {"n": 1})
        assert (await asyncio.wait_for(first, 5))["n"] == 1
        with caplog.at_level(logging.INFO, logger="broadcaster.events"):
            await proxy.cut()
            pending = asyncio.ensure_future(anext(reader))
            for n in (2, 3):  # published while the reader cannot read
                await publisher.publish("update", {"n": n})
            await asyncio.sleep(1.0)
            await proxy.restore()
            got = [await asyncio.wait_for(pending, 10)]
            while len(got) < 3:
                got.append(await asyncio.wait_for(anext(reader), 5))
        assert [e["kind"] for e in got] == [RESYNC, "update", "update"], "caches hear of the outage first"
        assert [e["n"] for e in got[1:]] == [2, 3], "nothing published during the outage is skipped"
        assert id_key(got[2]["id"]) > id_key(got[1]["id"])
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage(), "one warning per outage"
        assert any("back after" in r.getMessage() for r in caplog.records)
    finally:
        await reader.aclose()
        await listener.aclose()
        await publisher.aclose()
        await proxy.stop()


async def test_an_idle_reader_says_nothing(stream_name: str, caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus(REDIS_URL, stream=stream_name, block_ms=200)  # several empty blocking reads
    reader = bus.listen()
    try:
        with caplog.at_level(logging.DEBUG):
            waiting = asyncio.ensure_future(anext(reader))
            await asyncio.sleep(1.5)
            assert not waiting.done()
            await bus.publish("update", {"n": 1})
            assert (await asyncio.wait_for(waiting, 5))["n"] == 1
        assert not [r for r in caplog.records if r.name.startswith("broadcaster") and r.levelno >= logging.INFO]
    finally:
        await reader.aclose()
        await bus.aclose()


async def test_a_closing_process_ends_even_a_stalled_stream(stream_name: str) -> None:
    hub = LiveEvents(EventBus(REDIS_URL, stream=stream_name), queue_size=1)
    stream = _stream(hub, frozenset({"update"}), keepalive_s=60, max_age_s=None)
    assert "event: ready" in await anext(stream)
    hub.dispatch({"kind": "update", "n": 1})  # the client's queue is full now
    hub.end_streams()
    frames = [frame async for frame in stream]
    assert frames[-1].startswith("retry: "), "ends with when to come back, however full its queue"
    await hub.aclose()


def _frames(text: str) -> list[dict[str, Any]]:
    frames = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            frames.append({"id": fields.get("id"), "event": fields["event"], "data": json.loads(fields["data"])})
    return frames


@contextlib.asynccontextmanager
async def events_stream(base: str, last_event_id: str | None = None) -> AsyncIterator[Any]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as browser,
        browser.stream("GET", "/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        yield response.aiter_text()


async def read_until(chunks: Any, done: Any) -> list[dict[str, Any]]:
    text = ""
    async for chunk in chunks:
        text += chunk
        if done(_frames(text)):
            return _frames(text)
    raise AssertionError("stream ended")


async def test_last_event_id_replays_what_was_missed_then_goes_live(app: Any, runtime: Runtime) -> None:
    mark = uuid.uuid4().hex
    live_events(app)
    async with serve_app(app) as base:
        async with events_stream(base) as chunks:
            opening = await asyncio.wait_for(read_until(chunks, lambda f: any(e["event"] == "ready" for e in f)), 5)
        seen_until = opening[-1]["id"]
        assert seen_until, "the ready event says where this client is, so a reconnect misses nothing"
        for n in range(3):  # published while the client was away
            await runtime.bus.publish("update", {"incident_id": f"{mark}-{n}", "update_id": "u", "public": True})
        await runtime.bus.publish("update", {"incident_id": f"{mark}-hidden", "public": False})
        async with events_stream(base, seen_until) as chunks:
            frames = await asyncio.wait_for(read_until(chunks, lambda f: any(e["event"] == "ready" for e in f)), 5)
            ours = [e for e in frames if str(e["data"].get("incident_id", "")).startswith(mark)]
            assert [e["data"]["incident_id"] for e in ours] == [f"{mark}-{n}" for n in range(3)]
            assert all(e["id"] for e in ours) and frames[-1]["event"] == "ready"
            assert id_key(frames[-1]["id"]) >= id_key(ours[-1]["id"])
            await runtime.bus.publish("update", {"incident_id": f"{mark}-live", "update_id": "u"})
            more = await asyncio.wait_for(
                read_until(chunks, lambda f: any(e["data"].get("incident_id") == f"{mark}-live" for e in f)), 5
            )
        assert not [e for e in more if e["data"].get("incident_id") == f"{mark}-0"], "nothing is sent twice"


@pytest.mark.parametrize("header", ["garbage", "1-2-3", "", "9" * 40 + "-0"])
async def test_a_bad_last_event_id_is_ignored(header: str, app: Any) -> None:
    async with serve_app(app) as base, events_stream(base, header) as chunks:
        frames = await asyncio.wait_for(read_until(chunks, lambda f: any(e["event"] == "ready" for e in f)), 5)
    assert frames[-1]["event"] == "ready"


async def test_an_id_from_ahead_of_the_stream_does_not_silence_the_client(app: Any, runtime: Runtime) -> None:
    """A Redis with an earlier clock took over: a client's id from the old one must not hide new events."""
    mark = uuid.uuid4().hex
    live_events(app)
    async with serve_app(app) as base, events_stream(base, "99999999999999-0") as chunks:
        await asyncio.wait_for(read_until(chunks, lambda f: any(e["event"] == "ready" for e in f)), 5)
        await runtime.bus.publish("update", {"incident_id": mark, "update_id": "u"})
        frames = await asyncio.wait_for(
            read_until(chunks, lambda f: any(e["data"].get("incident_id") == mark for e in f)), 5
        )
    assert frames
