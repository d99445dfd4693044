"""The public live stream never announces a drill, an update left off the page, or the desk's news; others may."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from status_page.live import LiveEvents, _stream
from status_page.public.pages import public_event


class SilentBus:
    async def listen(self) -> Any:
        await asyncio.Event().wait()
        yield {}


HIDDEN = [
    {"kind": "update", "incident_id": "drill1", "drill": True},
    {"kind": "update", "incident_id": "desk1", "drill": False, "public": False},
    {"kind": "published", "incident_id": "desk2", "update_id": "u", "channel": "desk"},
]
SHOWN = {"kind": "update", "incident_id": "real1", "drill": False, "public": True}


async def read_frames(accept: Any) -> list[str]:
    hub = LiveEvents(SilentBus())  # type: ignore[arg-type]
    stream = _stream(hub, frozenset({"update", "published"}), keepalive_s=60, max_age_s=None, accept=accept)
    frames = [await anext(stream)]  # "ready": the client is connected from here on
    for event in [*HIDDEN, SHOWN]:
        hub.dispatch(event)
    for _ in range(1 if accept is not None else len(HIDDEN) + 1):
        frames.append(await asyncio.wait_for(anext(stream), 1))
    await stream.aclose()
    return frames


async def test_public_filter_drops_drills_hidden_updates_and_the_desk() -> None:
    frames = await read_frames(public_event)
    for event in HIDDEN:
        assert str(event["incident_id"]) not in "".join(frames)
    assert '"incident_id":"real1"' in frames[-1]


async def test_unfiltered_stream_sees_all() -> None:
    frames = await read_frames(None)
    assert [i for i in ("drill1", "desk1", "desk2", "real1") if any(i in f for f in frames)] == [
        "drill1",
        "desk1",
        "desk2",
        "real1",
    ]


@pytest.mark.parametrize(
    ("event", "shown"),
    [
        ({"kind": "update", "incident_id": "x"}, True),  # an event from before the flag: public
        ({"kind": "published", "incident_id": "x", "channel": "status_page", "drill": False}, True),
        ({"kind": "published", "incident_id": "x", "channel": "status_page", "drill": True}, False),
        ({"kind": "update", "incident_id": "x", "public": False}, False),
    ],
)
def test_public_event(event: dict[str, Any], shown: bool) -> None:
    assert public_event(event) is shown
