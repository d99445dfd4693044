"""Live events across processes on one Redis stream (status page SSE, desk, console counts).

``publish`` appends an event to the stream (``XADD … MAXLEN ~ max_len``), so an event
outlives its moment: ``listen()`` reads on from where it starts with ``XREAD BLOCK``,
resuming after its last event when the connection is lost, and ``since(id)`` gives what a
client that reconnects missed. Each event is a dict: the publisher's fields, its ``kind``
and its stream ``id`` (``"<ms>-<seq>"``, ordered by ``id_key``). A reader back from an
outage also yields ``{"kind": "resync"}`` (no id): an event published meanwhile may have
failed, so caches start afresh.

The blocking read has no socket timeout (a quiet stream is not an error); a read the server
does not answer within ``block_ms`` plus a margin means a dead connection, and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

EVENTS_STREAM = "broadcaster:events"
MAX_LEN = 10_000  # events kept for clients that reconnect (XADD trims to about this many)
BLOCK_MS = 10_000
DEAD_READ_MARGIN_S = 10.0  # a blocking read unanswered for block + this: the connection is gone
RETRY_MAX_S = 5.0
_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
RESYNC = "resync"

Event = dict[str, Any]


def valid_id(value: str | None) -> str | None:
    """``value`` if it is a stream id (what a ``Last-Event-ID`` header must be), else None."""
    value = None if value is None else value.strip()
    return value if value and _ID.match(value) else None


def id_key(event_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair: ids compare by time, then sequence."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def _decode(event_id: str, fields: Mapping[str, str]) -> Event | None:
    try:
        event = json.loads(fields["event"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(event, dict):
        return None
    event["id"] = event_id
    return event


class EventBus:
    """Publish JSON events to every process; ``listen`` and ``since`` read them back."""

    def __init__(
        self, redis_url: str, stream: str = EVENTS_STREAM, max_len: int = MAX_LEN, block_ms: int = BLOCK_MS
    ) -> None:
        self._redis_url = redis_url
        self.stream = stream
        self.max_len = max_len
        self.block_ms = block_ms
        self._client: aioredis.Redis | None = None
        self._readers: list[aioredis.Redis] = []

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.from_url(  # type: ignore[no-untyped-call]
                self._redis_url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True
            )
        return self._client

    def _reader_client(self) -> aioredis.Redis:
        # Its own connection, with no socket timeout: XREAD BLOCK waits quietly for as long as
        # nothing happens. The health check pings a connection that sat unused for a while.
        client: aioredis.Redis = aioredis.from_url(  # type: ignore[no-untyped-call]
            self._redis_url,
            socket_connect_timeout=2,
            socket_timeout=None,
            socket_keepalive=True,
            health_check_interval=30,
            decode_responses=True,
        )
        self._readers.append(client)
        return client

    async def publish(self, kind: str, data: Mapping[str, Any]) -> None:
        """Best effort: a live event that cannot be published costs a refresh, never data."""
        payload = json.dumps({**data, "kind": kind}, default=str)
        try:
            await self._redis().xadd(self.stream, {"event": payload}, maxlen=self.max_len, approximate=True)
        except Exception as exc:
            log.warning("event %s not published: %s", kind, exc)

    async def last_id(self) -> str:
        """The id of the newest event, ``"0-0"`` when there is none: where a new listener starts."""
        newest = await self._redis().xrevrange(self.stream, count=1)
        return str(newest[0][0]) if newest else "0-0"

    async def since(self, after: str, limit: int | None = None) -> list[Event]:
        """The events after ``after``, oldest first (at most ``limit``, default all that are kept)."""
        entries = await self._redis().xrange(self.stream, min=f"({after}", max="+", count=limit or self.max_len)
        return [event for event_id, fields in entries if (event := _decode(event_id, fields)) is not None]

    def listen(self, after: str | None = None) -> EventReader:
        """Every event after ``after`` (default: from now on), in order, for as long as it is read."""
        return EventReader(self, after)

    async def aclose(self) -> None:
        for client in [*self._readers, self._client]:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._readers.clear()
        self._client = None


class EventReader:
    """An async iterator over the stream; ``position`` is the id of the last event it gave.

    Connection trouble never ends it: it waits (the first failure of a streak logged as a
    warning, the recovery as info) and reads on after ``position``, so nothing published
    meanwhile is skipped.
    """

    def __init__(self, bus: EventBus, after: str | None) -> None:
        self._bus = bus
        self.position = after
        self._client: aioredis.Redis | None = None
        self._buffer: list[Event] = []
        self._down_since: float | None = None

    def __aiter__(self) -> EventReader:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            try:
                await self._fill()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis-py raises its own hierarchy, sockets raise OSError
                await self._lost(exc)
            else:
                if self._down_since is not None:
                    self._recovered()
                    return {"kind": RESYNC}
        event = self._buffer.pop(0)
        self.position = event["id"]
        return event

    async def _fill(self) -> None:
        bus = self._bus
        if self._client is None:
            self._client = bus._reader_client()
        if self.position is None:
            self.position = await bus.last_id()
        elif self._down_since is not None:
            newest = await bus.last_id()
            if id_key(newest) < id_key(self.position):  # Redis came back empty: read its new stream whole
                self.position = "0-0"
        # asyncio.timeout, not wait_for: no inner task, so a cancel reaches the read itself at once.
        async with asyncio.timeout(bus.block_ms / 1000 + DEAD_READ_MARGIN_S):
            reply = await self._client.xread({bus.stream: self.position}, count=500, block=bus.block_ms)
        for _, entries in reply or []:
            for event_id, fields in entries:
                event = _decode(event_id, fields)
                if event is None:
                    self.position = event_id  # skip what is not ours without reading it again
                else:
                    self._buffer.append(event)

    async def _lost(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("event stream unreachable (%s); reading on from %s once it is back", exc, self.position)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
        down_s = time.monotonic() - self._down_since
        await asyncio.sleep(min(RETRY_MAX_S, 0.25 + down_s / 4))

    def _recovered(self) -> None:
        assert self._down_since is not None
        log.info("event stream back after %.1f s", time.monotonic() - self._down_since)
        self._down_since = None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
