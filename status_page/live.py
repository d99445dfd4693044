"""Live events for browsers: one stream reader per web process, fanned out to SSE clients.

``live_events(app)`` gives the process's ``LiveEvents``, reading ``runtime.bus`` from the
first time anything asks for it until the app stops. Pages stream with
``sse_response(request, kinds)``: every frame carries its stream ``id:``, so a browser that
reconnects sends ``Last-Event-ID`` and first gets what it missed (as far back as the stream
keeps), then live events. In-process caches subscribe with ``add_listener`` (called before
any client is told, so a client's re-fetch sees fresh data). The public page, the desk and
the console all share it.

On SIGTERM or SIGINT (``end_streams_on_signal``) every open stream ends at once with a short
``retry:`` hint, before the server's own handler runs: servers wait for open responses to
finish before they stop, and a stream never would.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import random
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import FrameType
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from broadcaster.events import Event, EventBus, EventReader, id_key, valid_id
from broadcaster.ratelimit import client_bucket
from status_page.http import HTTPError

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]
KEEPALIVE_S = 15.0
CLIENT_QUEUE_SIZE = 64
RECONNECT_MS = 2000
SHUTDOWN_RECONNECT_MS = (500, 2500)  # spread, so a closing process's clients do not all return at once


class LiveEvents:
    """Reads the event stream once and hands each event to every connected client's queue."""

    def __init__(self, bus: EventBus, queue_size: int = CLIENT_QUEUE_SIZE) -> None:
        self.bus = bus
        self._queue_size = queue_size
        self._clients: set[asyncio.Queue[Event | None]] = set()
        self._per_client: collections.Counter[str] = collections.Counter()
        self._listeners: list[Listener] = []
        self._reader: EventReader | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        if self._task is None and not self.closed:
            self._reader = self.bus.listen()
            self._task = asyncio.get_running_loop().create_task(self._run(self._reader), name="live-events")

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event, before clients hear of it."""
        self._listeners.append(listener)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @property
    def position(self) -> str | None:
        """The id of the last event handed out: every later one reaches the queues connected now."""
        return None if self._reader is None else self._reader.position

    def streams_of(self, client: str) -> int:
        """How many streams ``client`` (a limiter bucket) holds open here."""
        return self._per_client[client]

    @contextlib.contextmanager
    def connect(self, client: str = "") -> Iterator[asyncio.Queue[Event | None]]:
        """A queue receiving every event while the ``with`` block lasts; ``None`` means closing."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(self._queue_size)
        if self.closed:
            queue.put_nowait(None)
        self._clients.add(queue)
        self._per_client[client] += 1
        try:
            yield queue
        finally:
            self._clients.discard(queue)
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]

    def dispatch(self, event: Event) -> None:
        """Hand ``event`` to listeners and clients (what the reader does with each event)."""
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("live-event listener failed")
        for queue in list(self._clients):
            # A client that stopped reading misses events; it re-fetches on its next one.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    async def missed(self, after: str) -> tuple[list[Event], bool]:
        """What a client that last saw ``after`` missed, oldest first, and whether ``after`` is
        plausible: an id ahead of the whole stream (a Redis with an earlier clock took over) is not."""
        try:
            newest = await self.bus.last_id()
            return await self.bus.since(after), id_key(after) <= id_key(newest)
        except Exception as exc:
            log.info("could not replay events after %s: %s", after, exc)
            return [], True

    async def _run(self, reader: EventReader) -> None:
        async for event in reader:  # ``resync`` after an outage included: caches start afresh
            self.dispatch(event)

    def end_streams(self) -> None:
        """End every open stream now (and any opened later): the process is stopping."""
        self.closed = True
        for queue in list(self._clients):
            while True:
                try:
                    queue.put_nowait(None)
                    break
                except asyncio.QueueFull:  # make room: the end must arrive
                    queue.get_nowait()

    async def aclose(self) -> None:
        """Stop reading and end every open stream."""
        self.end_streams()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Wait briefly only: during an ASGI lifespan shutdown the cancelled read has been
            # seen to stay pending for the server's whole shutdown timeout (tests: 5 s).
            done, _ = await asyncio.wait([task], timeout=0.2)
            if not done:
                log.debug("live-events reader still stopping; not waiting for it")
        if self._reader is not None:
            await self._reader.aclose()


def live_events(app: Any) -> LiveEvents:
    """This app's ``LiveEvents``, reading from the first call until the app shuts down."""
    hub: LiveEvents | None = getattr(app.state, "live_events", None)
    if hub is None:
        hub = LiveEvents(app.state.runtime.bus)
        app.state.live_events = hub

        async def stop(app: Any) -> None:
            await hub.aclose()

        app.state.shutdown_hooks.append(stop)
    hub.start()
    return hub


@contextlib.contextmanager
def end_streams_on_signal(hub: LiveEvents, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """While the block runs, these signals end ``hub``'s streams first, then reach the handler
    that was there before (the server's: uvicorn's, or granian's through its event loop)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; an embedded app stops its streams on shutdown
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(hub.end_streams)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:  # nobody else handles it: do what the default would, once streams ended
            signal.signal(signum, signal.SIG_DFL)
            loop.call_later(0.2, os.kill, os.getpid(), signum)

    for signum in signals:
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, before if before is not None else signal.SIG_DFL)


def sse_frame(kind: str, data: Any, event_id: str | None = None) -> str:
    """One server-sent event (with its stream id, when it has one)."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n"


def _newest(*ids: str | None) -> str | None:
    present = [i for i in ids if i]
    return max(present, key=id_key) if present else None


async def _stream(
    hub: LiveEvents,
    kinds: frozenset[str],
    keepalive_s: float,
    max_age_s: float | None,
    accept: Callable[[Event], bool] | None = None,
    last_event_id: str | None = None,
    client: str = "",
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    ends_at = None if max_age_s is None else loop.time() + max_age_s

    def frame(event: Event) -> str | None:
        kind = str(event.get("kind", ""))
        if kind not in kinds or (accept is not None and not accept(event)):
            return None
        return sse_frame(kind, {k: v for k, v in event.items() if k not in ("kind", "id")}, event.get("id"))

    with hub.connect(client) as queue:
        opening = [f"retry: {RECONNECT_MS}\n\n"]
        seen = hub.position  # the newest event this client has had: nothing up to it is sent again
        if last_event_id is not None:
            missed, plausible = await hub.missed(last_event_id)
            seen = _newest(seen, last_event_id if plausible else None)
            for earlier in missed:
                if (text := frame(earlier)) is not None:
                    opening.append(text)
                seen = _newest(seen, earlier["id"])
        yield "".join(opening) + sse_frame("ready", {}, seen)
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
                yield f"retry: {random.randint(*SHUTDOWN_RECONNECT_MS)}\n\n"
                return
            event_id = event.get("id")
            if seen is not None and event_id is not None and id_key(event_id) <= id_key(seen):
                continue  # replayed above already
            if (text := frame(event)) is not None:
                yield text


def sse_response(
    request: Request,
    kinds: Iterable[str],
    keepalive_s: float = KEEPALIVE_S,
    max_age_s: float | None = None,
    accept: Callable[[Event], bool] | None = None,
) -> StreamingResponse:
    """A ``text/event-stream`` of the events named ``kinds``, each with its ``id:``.

    Opens with the events after the request's ``Last-Event-ID`` (if any), then a ``ready``
    event, then live events. ``max_age_s`` ends the stream after that long; browsers
    reconnect by themselves, which makes a route behind a login check the session again.
    ``accept`` filters events further. A ``Last-Event-ID`` that is not a stream id is ignored.
    """
    hub = live_events(request.app)
    settings = request.app.state.settings
    client = client_bucket(request.client.host if request.client else None)
    if hub.client_count >= settings.sse_max_streams:
        raise HTTPError(
            503, "busy", "too many live streams on this server; retry shortly", headers={"Retry-After": "5"}
        )
    if hub.streams_of(client) >= settings.sse_max_streams_per_client:
        raise HTTPError(429, "rate_limited", "too many live streams from this address", headers={"Retry-After": "30"})
    last_event_id = valid_id(request.headers.get("last-event-id"))
    return StreamingResponse(
        _stream(hub, frozenset(kinds), keepalive_s, max_age_s, accept, last_event_id, client),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"},
    )
