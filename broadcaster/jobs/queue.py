"""The producer side of the job queue (arq on Redis).

Enqueueing never loses anything: what could not be enqueued stays in the outbox or the
ledger, and the relay cron puts it in line again once Redis answers.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool

log = logging.getLogger(__name__)

FANOUT = "fanout"
DELIVER_BATCH = "deliver_batch"


def redis_settings(redis_url: str) -> RedisSettings:
    """arq settings for ``redis_url`` that fail fast instead of blocking a web request."""
    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_retries = 0
    settings.conn_timeout = 2
    return settings


def fanout_job_id(update_id: str, channel: str) -> str:
    return f"fanout:{update_id}:{channel}"


def batch_job_id(update_id: str, channel: str, first_id: int, last_id: int) -> str:
    return f"deliver:{update_id}:{channel}:{first_id}:{last_id}"


class Queue:
    """Enqueues broadcaster's jobs; connects lazily and reports (not raises) a Redis outage."""

    def __init__(self, redis_url: str, queue_name: str, pool: ArqRedis | None = None) -> None:
        self._redis_url = redis_url
        self.queue_name = queue_name
        self._pool = pool
        self._owns_pool = pool is None

    async def pool(self) -> ArqRedis:
        if self._pool is None:
            self._pool = await create_pool(redis_settings(self._redis_url), default_queue_name=self.queue_name)
        return self._pool

    async def enqueue(self, function: str, *args: Any, job_id: str, defer_s: float | None = None) -> bool:
        """True when the job is queued (or already was); False when Redis is out of reach."""
        try:
            pool = await self.pool()
            await pool.enqueue_job(function, *args, _job_id=job_id, _queue_name=self.queue_name, _defer_by=defer_s)
        except (OSError, ConnectionError, TimeoutError) as exc:
            log.warning("could not enqueue %s (%s); the relay will retry", job_id, exc)
            await self._drop_pool()
            return False
        except Exception as exc:  # redis-py raises its own hierarchy
            if exc.__class__.__module__.startswith("redis"):
                log.warning("could not enqueue %s (%s); the relay will retry", job_id, exc)
                await self._drop_pool()
                return False
            raise
        return True

    async def enqueue_fanout(self, update_id: str, channel: str) -> bool:
        return await self.enqueue(FANOUT, update_id, channel, job_id=fanout_job_id(update_id, channel))

    async def enqueue_batch(
        self, update_id: str, channel: str, first_id: int, last_id: int, defer_s: float | None = None
    ) -> bool:
        return await self.enqueue(
            DELIVER_BATCH,
            update_id,
            channel,
            first_id,
            last_id,
            job_id=batch_job_id(update_id, channel, first_id, last_id),
            defer_s=defer_s,
        )

    async def depth(self) -> int | None:
        """Jobs waiting in the queue, or None when Redis is out of reach."""
        try:
            pool = await self.pool()
            return int(await pool.zcard(self.queue_name))
        except Exception:
            await self._drop_pool()
            return None

    async def _drop_pool(self) -> None:
        if self._pool is not None and self._owns_pool:
            with contextlib.suppress(Exception):  # the pool is already broken
                await self._pool.aclose()
            self._pool = None

    async def aclose(self) -> None:
        await self._drop_pool()
