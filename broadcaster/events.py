"""Live events across processes over Redis pub/sub (status page SSE, desk, console counts)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)
EVENTS_CHANNEL = "broadcaster:events"


class EventBus:
    """Publish JSON events to every process; ``listen`` yields them, reconnecting as needed."""

    def __init__(self, redis_url: str, channel: str = EVENTS_CHANNEL) -> None:
        self._redis_url = redis_url
        self._channel = channel
        self._client: aioredis.Redis | None = None

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.from_url(  # type: ignore[no-untyped-call]
                self._redis_url, socket_connect_timeout=2, socket_timeout=5)
        return self._client

    async def publish(self, kind: str, data: Mapping[str, Any]) -> None:
        """Best effort: a missed live event costs a refresh, never data."""
        payload = json.dumps({"kind": kind, **data}, default=str)
        try:
            await self._redis().publish(self._channel, payload)
        except Exception as exc:
            log.warning("event %s not published: %s", kind, exc)

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            pubsub = self._redis().pubsub()
            try:
                await pubsub.subscribe(self._channel)
                async for item in pubsub.listen():
                    if item.get("type") == "message":
                        try:
                            yield json.loads(item["data"])
                        except (TypeError, ValueError):
                            continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event stream lost (%s); reconnecting", exc)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
