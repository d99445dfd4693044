"""Fixed-window rate limits in Redis (``INCR`` + ``EXPIRE``), shared by every web process.

    limiter = RateLimiter(redis, namespace="broadcaster:queue")
    wait_s = await limiter.hit("subscribe:sms:ip:203.0.113.7", limit=5, window_s=3600)
    if wait_s is not None:
        ...  # answer 429 with Retry-After: wait_s
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class LimiterUnavailable(Exception):
    """Redis did not answer, so no limit could be checked."""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``limit`` hits on ``key`` per ``window_s`` seconds (a limit of 0 or less is off)."""

    key: str
    limit: int
    window_s: int


class RateLimiter:
    """Counts hits per key in windows that start with the first hit.

    Keys live under ``{namespace}:ratelimit:``, so deployments (and test runs) sharing one
    Redis keep separate counts.
    """

    def __init__(self, redis: Any, namespace: str = "broadcaster") -> None:
        self._redis = redis
        self._prefix = f"{namespace}:ratelimit:"

    async def hit(self, key: str, limit: int, window_s: int) -> int | None:
        """Count one hit; ``None`` when within ``limit``, else the seconds until the window ends."""
        if limit <= 0:
            return None
        name = self._prefix + key
        try:
            count = int(await self._redis.incr(name))
            if count == 1:
                await self._redis.expire(name, window_s)
            if count <= limit:
                return None
            ttl = int(await self._redis.ttl(name))
            if ttl < 0:  # a key left without expiry (a crash between INCR and EXPIRE)
                await self._redis.expire(name, window_s)
                ttl = window_s
        except Exception as exc:  # redis-py raises its own hierarchy as well as OSError
            raise LimiterUnavailable(str(exc)) from exc
        return max(1, math.ceil(ttl))

    async def check(self, limits: Sequence[Limit]) -> int | None:
        """Hit every limit; the longest wait among those exceeded, or ``None``."""
        waits = [await self.hit(item.key, item.limit, item.window_s) for item in limits]
        exceeded = [w for w in waits if w is not None]
        return max(exceeded) if exceeded else None
