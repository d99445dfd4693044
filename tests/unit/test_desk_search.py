"""The desk's search words, its cache and the live-event fan-out, without a server."""

from __future__ import annotations

import asyncio

import pytest

from broadcaster.events import EventBus
from status_page.desk import DeskCache
from status_page.desk_data import score, search_terms
from status_page.live import LiveEvents, _stream, sse_frame


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("refund", ["refund"]),
        ("REFUNDS?", ["refund"]),
        ("When will it be fixed?", ["fix"]),
        ("when", ["when"]),  # only stop words: keep them
        ("", []),
        ("%_'\"<>", []),
        ("ça marche", ["ça", "marche"]),
        ("data data data", ["data"]),
    ],
)
def test_search_terms(query: str, terms: list[str]) -> None:
    assert search_terms(query) == terms


@pytest.mark.parametrize(
    ("text", "terms", "expected"),
    [
        ("Will I get a refund for the downtime?", ["refund"], 1),
        ("When will it be fixed?", ["fix"], 1),
        ("Is a prefix a fix?", ["fix"], 1),  # "prefix" does not count: words start with the term
        ("Can I get a REFUND or credits?", ["refund", "credit"], 2),
        ("Will I get a refund?", ["pineapple"], 0),
    ],
)
def test_score_counts_terms_starting_words(text: str, terms: list[str], expected: int) -> None:
    assert score(text, terms) == expected


async def test_cache_builds_once_and_drops_on_events() -> None:
    cache = DeskCache(ttl_s=60)
    builds = 0

    async def build() -> str:
        nonlocal builds
        builds += 1
        await asyncio.sleep(0.01)
        return f"desk {builds}"

    assert await asyncio.gather(cache.get(build), cache.get(build), cache.get(build)) == ["desk 1"] * 3
    cache.invalidate({"kind": "update"})
    assert await cache.get(build) == "desk 2"


async def test_cache_does_not_keep_a_build_overtaken_by_an_event() -> None:
    cache = DeskCache(ttl_s=60)

    async def slow() -> str:
        cache.invalidate()  # an update lands while the desk is being read
        return "old"

    assert await cache.get(slow) == "old"

    async def fresh() -> str:
        return "new"

    assert await cache.get(fresh) == "new"


async def test_live_events_fan_out_listeners_first() -> None:
    hub = LiveEvents(EventBus("redis://127.0.0.1:1/0"), queue_size=2)
    order: list[str] = []
    hub.add_listener(lambda event: order.append("listener"))
    with hub.connect() as first, hub.connect() as second:
        assert hub.client_count == 2
        for n in range(3):  # the third overflows the bounded queues and is dropped, not awaited
            hub.dispatch({"kind": "update", "n": n})
        received = [first.get_nowait(), first.get_nowait()]
        assert received == [{"kind": "update", "n": 0}, {"kind": "update", "n": 1}]
        assert second.qsize() == 2
        assert order == ["listener"] * 3
    assert hub.client_count == 0
    await hub.aclose()


def test_sse_frame() -> None:
    assert sse_frame("update", {"a": 1}) == 'event: update\ndata: {"a":1}\n\n'


async def test_stream_filters_kinds_and_ends_with_the_hub() -> None:
    hub = LiveEvents(EventBus("redis://127.0.0.1:1/0"))
    stream = _stream(hub, frozenset({"update"}), keepalive_s=5, max_age_s=None)
    assert (await anext(stream)).endswith(sse_frame("ready", {}))
    hub.dispatch({"kind": "deliveries", "update_id": "u1"})  # not asked for: skipped
    hub.dispatch({"kind": "update", "update_id": "u2"})
    assert await anext(stream) == sse_frame("update", {"update_id": "u2"})
    await hub.aclose()
    ending = [frame async for frame in stream]
    assert len(ending) == 1 and ending[0].startswith("retry: "), "a closing process says when to come back"


async def test_stream_keeps_alive_and_ends_after_max_age() -> None:
    hub = LiveEvents(EventBus("redis://127.0.0.1:1/0"))
    frames = [frame async for frame in _stream(hub, frozenset({"update"}), keepalive_s=0.05, max_age_s=0.12)]
    assert frames[0].startswith("retry: ") and ": keepalive\n\n" in frames
    assert hub.client_count == 0
