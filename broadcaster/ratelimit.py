"""Rate limits in Redis shared by every web process: fixed windows (``INCR`` + ``EXPIRE``) and growing delays.

    limiter = RateLimiter(redis, namespace="broadcaster:queue")
    wait_s = await limiter.hit(f"subscribe:sms:ip:{client_bucket(host)}", limit=5, window_s=3600)
    if wait_s is not None:
        ...  # answer 429 with Retry-After: wait_s

A key part that comes from user input goes through ``digest`` first (a 500 KB user name makes
a 32-character key), and a client address through ``client_bucket`` (an IPv6 client gets one
bucket per /64: one host usually holds a whole /64 and can pick any address in it).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IPV6_BUCKET_PREFIX = 64


def digest(value: str) -> str:
    """A fixed-length stand-in for user input in a key: 32 hex characters of its SHA-256."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def client_bucket(host: str | None) -> str:
    """The limiter bucket of a client address: an IPv4 address itself, an IPv6 address its /64.

    ``client_bucket("2001:db8:1:2::7") == "2001:db8:1:2::/64"``; an IPv4-mapped IPv6 address
    counts as its IPv4 address; anything that is no address (a test client's name) is digested.
    """
    try:
        ip = ipaddress.ip_address((host or "").split("%", 1)[0])
    except ValueError:
        return "name:" + digest(host or "")
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_BUCKET_PREFIX), strict=False))
    return str(ip)


class LimiterUnavailable(Exception):
    """Redis did not answer, so no limit could be checked."""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``limit`` hits on ``key`` per ``window_s`` seconds (a limit of 0 or less is off)."""

    key: str
    limit: int
    window_s: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """One counted hit: ``wait_s`` before trying again (``None``: go ahead), ``tripped`` on the hit that began a wait.

    ``tripped`` is true once per lockout, so a caller can log the lockout and not every refused attempt.
    """

    wait_s: int | None = None
    tripped: bool = False


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
        return (await self.count(key, limit, window_s)).wait_s

    async def count(self, key: str, limit: int, window_s: int) -> Verdict:
        """Count one hit in a fixed window of ``window_s``; over ``limit`` it waits until the window ends."""
        if limit <= 0:
            return Verdict()
        name = self._prefix + key
        try:
            count = int(await self._redis.incr(name))
            if count == 1:
                await self._redis.expire(name, window_s)
            if count <= limit:
                return Verdict()
            ttl = int(await self._redis.ttl(name))
            if ttl < 0:  # a key left without expiry (a crash between INCR and EXPIRE)
                await self._redis.expire(name, window_s)
                ttl = window_s
        except Exception as exc:  # redis-py raises its own hierarchy as well as OSError
            raise LimiterUnavailable(str(exc)) from exc
        return Verdict(max(1, math.ceil(ttl)), tripped=count == limit + 1)

    async def backoff(self, key: str, free: int, max_delay_s: int) -> Verdict:
        """Count an attempt with a growing delay: from the ``free``-th on, each must wait 2, 4, 8 … s after the last.

        The delay stops growing at ``max_delay_s``; the count is forgotten after twice that without
        attempts, or at once by ``forget`` (a successful login). An attempt made while waiting is not
        counted, so a person retrying too early does not lengthen their own wait.
        """
        if free <= 0:
            return Verdict()
        name = self._prefix + key
        hold = name + ":hold"
        try:
            wait_ms = int(await self._redis.pttl(hold))
            if wait_ms > 0:
                return Verdict(max(1, math.ceil(wait_ms / 1000)))
            count = int(await self._redis.incr(name))
            await self._redis.expire(name, 2 * max_delay_s)
            if count < free:
                return Verdict()
            await self._redis.set(hold, b"1", ex=min(max_delay_s, 2 ** min(count - free + 1, 30)))
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc
        return Verdict(tripped=count == free)

    async def forget(self, key: str) -> None:
        """Drop a ``backoff`` key's count and wait."""
        name = self._prefix + key
        try:
            await self._redis.delete(name, name + ":hold")
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc

    async def check(self, limits: Sequence[Limit]) -> int | None:
        """Hit every limit; the longest wait among those exceeded, or ``None``."""
        waits = [await self.hit(item.key, item.limit, item.window_s) for item in limits]
        exceeded = [w for w in waits if w is not None]
        return max(exceeded) if exceeded else None
