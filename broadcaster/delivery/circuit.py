"""A per-channel circuit breaker, its state in Redis so every worker shares it.

    closed ──(N consecutive failed batches)──► open ──(cool-down over)──► half-open
      ▲                                                                     │
      └────────────(the one probe batch succeeds)───────────────────────────┘
                     (the probe fails: open again for another cool-down)

While the circuit is open, ``deliver_batch`` defers its job without claiming a row, so a
provider outage does not burn every recipient's attempts. In half-open state one worker
wins the probe (``SET NX``) and sends one batch; the others keep waiting.

A batch *fails* when nothing in it was accepted and every outcome was retryable (timeouts,
5xx, 429, refused connections): the provider, not the recipients, is the problem. A batch
with any accepted or permanently refused recipient shows the provider answering, and closes
the circuit. When Redis itself is out of reach the breaker lets everything through (the
ledger and its retries still protect the recipients).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

RedisFactory = Callable[[], Awaitable[Any]]


class CircuitBreaker:
    """``allow(channel)`` before sending, ``record(channel, ok)`` after each batch."""

    def __init__(
        self,
        redis: RedisFactory,
        namespace: str,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        probe_lease_s: float | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:circuit:"
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        # A probe whose worker died must not hold the circuit half-open for ever.
        self.probe_lease_s = probe_lease_s if probe_lease_s is not None else max(1.0, cooldown_s)

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    def _key(self, channel: str, part: str) -> str:
        return f"{self._prefix}{channel}:{part}"

    async def allow(self, channel: str) -> float | None:
        """``None`` when a batch of ``channel`` may be sent now, else the seconds to wait."""
        if not self.enabled:
            return None
        try:
            redis = await self._redis()
            open_ms = int(await redis.pttl(self._key(channel, "open")))
            if open_ms > 0:
                return open_ms / 1000
            failures = int(await redis.get(self._key(channel, "failures")) or 0)
            if failures < self.threshold:
                return None
            # Half-open: exactly one worker sends the probe batch.
            won = await redis.set(
                self._key(channel, "probe"), str(time.time()), nx=True, px=int(self.probe_lease_s * 1000)
            )
            if won:
                log.info("circuit of %s half-open: sending a probe batch", channel, extra={"channel": channel})
                return None
            probe_ms = int(await redis.pttl(self._key(channel, "probe")))
            return max(0.2, min(probe_ms / 1000 if probe_ms > 0 else 1.0, 5.0))
        except Exception as exc:  # redis-py's own hierarchy as well as OSError
            log.warning("circuit breaker state unreachable (%s); sending", exc)
            return None

    async def record(self, channel: str, ok: bool) -> None:
        """Count one batch outcome: a success closes the circuit, ``threshold`` failures open it."""
        if not self.enabled:
            return
        try:
            redis = await self._redis()
            if ok:
                await redis.delete(
                    self._key(channel, "failures"), self._key(channel, "probe"), self._key(channel, "open")
                )
                return
            failures = int(await redis.incr(self._key(channel, "failures")))
            await redis.expire(self._key(channel, "failures"), int(max(60.0, self.cooldown_s * 10)))
            if failures >= self.threshold:
                await redis.set(self._key(channel, "open"), "1", px=int(self.cooldown_s * 1000))
                await redis.delete(self._key(channel, "probe"))
                log.warning(
                    "circuit of %s open for %.1f s after %d failed batches",
                    channel,
                    self.cooldown_s,
                    failures,
                    extra={"channel": channel},
                )
        except Exception as exc:
            log.warning("circuit breaker state unreachable (%s)", exc)

    async def state(self, channel: str) -> str:
        """``closed``, ``open`` or ``half-open`` (for views and tests)."""
        redis = await self._redis()
        if int(await redis.pttl(self._key(channel, "open"))) > 0:
            return "open"
        failures = int(await redis.get(self._key(channel, "failures")) or 0)
        return "half-open" if self.enabled and failures >= self.threshold else "closed"

    async def reset(self, channel: str) -> None:
        redis = await self._redis()
        await redis.delete(*(self._key(channel, p) for p in ("failures", "probe", "open")))


def batch_ok(sent: int, permanent: int, retryable: int) -> bool | None:
    """The breaker's reading of a batch: True (provider answers), False (provider down), None (nothing tried)."""
    if sent or permanent:
        return True
    if retryable:
        return False
    return None
