"""Which workers are alive: each keeps a key in Redis that expires a few seconds after it stops.

A worker beats every ``BEAT_EVERY_S``: ``<queue>:worker:<id>`` and ``<queue>:worker-host:<host>``,
both with a ``TTL_S`` time to live, and deletes them on a clean stop. It is listed in
``<queue>:workers`` from start to clean stop, and lists the batch ranges it runs in
``<queue>:worker-jobs:<id>`` (``hold`` / ``let_go``): a job it had taken but not claimed rows
for yet would otherwise wait for arq's own timeout. The relay takes back the claims and the
ranges of a worker whose key is gone (``dead``, ``held_ranges``, ``forget``);
``broadcaster.healthcheck worker`` asks whether this host's worker is alive (``host_alive``).

Just after Redis starts (a restart empties it) no key can be trusted to be missing: ``dead``
answers nobody until every live worker has had time to beat again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Collection

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

TTL_S = 6.0
BEAT_EVERY_S = 1.0


def worker_key(queue_name: str, worker_id: str) -> str:
    return f"{queue_name}:worker:{worker_id}"


def host_key(queue_name: str, host: str | None = None) -> str:
    return f"{queue_name}:worker-host:{host or socket.gethostname()}"


def _workers_key(queue_name: str) -> str:
    return f"{queue_name}:workers"


def _jobs_key(queue_name: str, worker_id: str) -> str:
    return f"{queue_name}:worker-jobs:{worker_id}"


class Heartbeat:
    """This worker's liveness in Redis: ``start`` beating, ``stop`` (and forget it) on a clean exit."""

    def __init__(self, redis: aioredis.Redis, queue_name: str, host: str | None = None) -> None:
        self.worker_id = secrets.token_hex(6)
        self._redis = redis
        self._queue_name = queue_name
        self._key = worker_key(queue_name, self.worker_id)
        self._host_key = host_key(queue_name, host)
        self._value = f"{host or socket.gethostname()}:{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self.last_beat = 0.0  # monotonic time of the last beat Redis took

    @property
    def fresh(self) -> bool:
        """Whether Redis surely still holds this worker's key (else others may take its claims back)."""
        return time.monotonic() - self.last_beat < TTL_S - 2 * BEAT_EVERY_S

    async def beat(self) -> None:
        ttl_ms = int(TTL_S * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._key, self._value, px=ttl_ms)
            pipe.set(self._host_key, self.worker_id, px=ttl_ms)
            await pipe.execute()
        self.last_beat = time.monotonic()

    async def start(self) -> None:
        """Beat once now (Redis must answer), then every ``BEAT_EVERY_S`` in the background."""
        await self.beat()
        await self._redis.sadd(_workers_key(self._queue_name), self.worker_id)  # type: ignore[misc]
        self._task = asyncio.get_running_loop().create_task(self._run(), name="worker-heartbeat")

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(BEAT_EVERY_S)
            try:
                await self.beat()
            except Exception as exc:  # redis-py raises its own hierarchy
                if not failing and not self.fresh:
                    log.warning(
                        "heartbeat not recorded for %.0f s (%s): this worker's claims may be taken back",
                        time.monotonic() - self.last_beat,
                        exc,
                    )
                    failing = True
            else:
                if failing:
                    log.info("heartbeat recorded again")
                failing = False

    async def hold(self, job: str) -> None:
        """This worker runs ``job`` (``update:channel:first:last``) until ``let_go``.

        Best effort: without it, a job this worker dies with waits for arq's timeout instead.
        """
        with contextlib.suppress(Exception):
            await self._redis.sadd(_jobs_key(self._queue_name, self.worker_id), job)  # type: ignore[misc]

    async def let_go(self, job: str) -> None:
        with contextlib.suppress(Exception):
            await self._redis.srem(_jobs_key(self._queue_name, self.worker_id), job)  # type: ignore[misc]

    async def stop(self) -> None:
        """Stop beating and delete the keys: this worker holds nothing any more."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # Redis away: the keys expire, the relay forgets the rest
            await self._redis.delete(self._key)
            await forget(self._redis, self._queue_name, self.worker_id)
            if await self._redis.get(self._host_key) in (self.worker_id, self.worker_id.encode()):
                await self._redis.delete(self._host_key)


def job_name(update_id: str, channel: str, first_id: int, last_id: int) -> str:
    return f"{update_id}:{channel}:{first_id}:{last_id}"


async def registered(redis: aioredis.Redis, queue_name: str) -> set[str]:
    """The workers started and not cleanly stopped (alive, or dead and not forgotten yet)."""
    return {_text(m) for m in await redis.smembers(_workers_key(queue_name))}  # type: ignore[misc]


async def held_ranges(redis: aioredis.Redis, queue_name: str, worker_id: str) -> list[tuple[str, str, int, int]]:
    """The batch ranges ``worker_id`` had taken when it was last heard of."""
    ranges = []
    for member in await redis.smembers(_jobs_key(queue_name, worker_id)):  # type: ignore[misc]
        update_id, channel, first_id, last_id = _text(member).rsplit(":", 3)
        ranges.append((update_id, channel, int(first_id), int(last_id)))
    return sorted(ranges)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def forget(redis: aioredis.Redis, queue_name: str, worker_id: str) -> None:
    """``worker_id`` holds nothing any more: out of the list, its ranges dropped."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.srem(_workers_key(queue_name), worker_id)
        pipe.delete(_jobs_key(queue_name, worker_id))
        await pipe.execute()


async def dead(redis: aioredis.Redis, queue_name: str, worker_ids: Collection[str]) -> set[str]:
    """Those of ``worker_ids`` whose heartbeat is gone (none while Redis itself has just started)."""
    if not worker_ids:
        return set()
    uptime_s = float((await redis.info("server")).get("uptime_in_seconds", 0))
    if uptime_s < TTL_S + 2 * BEAT_EVERY_S:
        return set()
    ids = sorted(worker_ids)
    async with redis.pipeline(transaction=False) as pipe:
        for worker_id in ids:
            pipe.exists(worker_key(queue_name, worker_id))
        present = await pipe.execute()
    return {worker_id for worker_id, exists in zip(ids, present, strict=True) if not exists}


async def host_alive(redis: aioredis.Redis, queue_name: str, host: str | None = None) -> bool:
    """Whether a worker on ``host`` (default: this one) beat within the last ``TTL_S``."""
    return bool(await redis.exists(host_key(queue_name, host)))
