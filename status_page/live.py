"""Live events for browsers: one bus listener per web process, fanned out to SSE clients.

``live_events(app)`` gives the process's ``LiveEvents``, starting its listener on
``runtime.bus`` the first time anything asks for it and stopping it with the app. Pages
stream with ``sse_response(request, kinds)``; in-process caches subscribe with
``add_listener`` (called before any client is told, so a client's re-fetch sees fresh
data). Any page's live stream (public page, desk, console) can share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from broadcaster.events import EventBus

log = logging.getLogger(__name__)

Event = dict[str, Any]
Listener = Callable[[Event], None]
KEEPALIVE_S = 15.0
CLIENT_QUEUE_SIZE = 64
RECONNECT_MS = 2000


class LiveEvents:
    """Reads the event bus once and hands each event to every connected client's queue."""

    def __init__(self, bus: EventBus, queue_size: int = CLIENT_QUEUE_SIZE) -> None:
        self._bus = bus
        self._queue_size = queue_size
        self._clients: set[asyncio.Queue[Event | None]] = set()
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        if self._task is None and not self.closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-events")

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event, before clients hear of it."""
        self._listeners.append(listener)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @contextlib.contextmanager
    def connect(self) -> Any:
        """A queue receiving every event while the ``with`` block lasts; ``None`` means closing."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(self._queue_size)
        self._clients.add(queue)
        try:
            yield queue
        finally:
            self._clients.discard(queue)

    def dispatch(self, event: Event) -> None:
        """Hand ``event`` to listeners and clients (what the bus listener does with each event)."""
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("live-event listener failed")
        for queue in list(self._clients):
            # A client that stopped reading misses events; it re-fetches on its next one.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    async def _run(self) -> None:
        async for event in self._bus.listen():
            if isinstance(event, dict):
                self.dispatch(event)

    async def aclose(self) -> None:
        """Stop listening and end every open stream."""
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for queue in list(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


def live_events(app: Any) -> LiveEvents:
    """This app's ``LiveEvents``, listening from the first call until the app shuts down."""
    hub: LiveEvents | None = getattr(app.state, "live_events", None)
    if hub is None:
        hub = LiveEvents(app.state.runtime.bus)
        app.state.live_events = hub

        async def stop(app: Any) -> None:
            await hub.aclose()

        app.state.shutdown_hooks.append(stop)
    hub.start()
    return hub


def sse_frame(kind: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {kind}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n"


async def _stream(
    hub: LiveEvents, kinds: frozenset[str], keepalive_s: float, max_age_s: float | None,
    accept: Callable[[Event], bool] | None = None,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    ends_at = None if max_age_s is None else loop.time() + max_age_s
    with hub.connect() as queue:
        yield f"retry: {RECONNECT_MS}\n\n" + sse_frame("ready", {})
        while True:
            wait_s = keepalive_s if ends_at is None else min(keepalive_s, ends_at - loop.time())
            if wait_s <= 0:
                return  # the browser reconnects, and the route checks its session again
            try:
                event = await asyncio.wait_for(queue.get(), wait_s)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if event is None:
                return
            kind = str(event.get("kind", ""))
            if kind in kinds and (accept is None or accept(event)):
                yield sse_frame(kind, {k: v for k, v in event.items() if k != "kind"})


def sse_response(
    request: Request, kinds: Iterable[str], keepalive_s: float = KEEPALIVE_S, max_age_s: float | None = None,
    accept: Callable[[Event], bool] | None = None,
) -> StreamingResponse:
    """A ``text/event-stream`` of the bus events named ``kinds``, opened by a ``ready`` event.

    ``max_age_s`` ends the stream after that long; browsers reconnect by themselves, which
    makes a route behind a login check the session again. ``accept`` filters events further.
    """
    hub = live_events(request.app)
    return StreamingResponse(
        _stream(hub, frozenset(kinds), keepalive_s, max_age_s, accept),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"},
    )
