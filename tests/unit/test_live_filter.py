"""The public live stream never announces a drill; other streams may."""

from __future__ import annotations

import asyncio
from typing import Any

from status_page.live import LiveEvents, _stream


class SilentBus:
    async def listen(self) -> Any:
        await asyncio.Event().wait()
        yield {}


async def read_frames(accept: Any) -> list[str]:
    hub = LiveEvents(SilentBus())  # type: ignore[arg-type]
    stream = _stream(hub, frozenset({"update"}), keepalive_s=60, max_age_s=None, accept=accept)
    frames = [await anext(stream)]  # "ready": the client is connected from here on
    hub.dispatch({"kind": "update", "incident_id": "drill1", "drill": True})
    hub.dispatch({"kind": "update", "incident_id": "real1", "drill": False})
    frames.append(await asyncio.wait_for(anext(stream), 1))
    if accept is None:
        frames.append(await asyncio.wait_for(anext(stream), 1))
    await stream.aclose()
    return frames


async def test_public_filter_drops_drill_events() -> None:
    frames = await read_frames(lambda event: not event.get("drill"))
    assert "drill1" not in "".join(frames)
    assert '"incident_id":"real1"' in frames[-1]


async def test_unfiltered_stream_sees_both() -> None:
    frames = await read_frames(None)
    assert "drill1" in frames[1] and "real1" in frames[2]
