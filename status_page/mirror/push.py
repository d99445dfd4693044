"""Pushing the mirror: render the site once, then send each target only the objects that changed.

One push at a time across every worker and the CLI (a Redis lock per deployment): a second push
waits for the first, then finds only what changed after it. Objects go in an order that keeps the
copy whole at every moment: assets first (pages name them), then incident and history pages, then
the entry points (the front page, feeds, JSON). Each object sent is recorded with its digest
(``mirror_objects``), so a push cut off half way sends only the rest the next time, and after an
outage of the target the next push sends everything that changed since the last success. A full
push (``broadcaster mirror push``) sends everything again. Objects that left the site (an incident
taken off the page) are deleted; old hashed assets stay, since cached pages may still name them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcaster.config import Settings
from broadcaster.db import make_engine, mirror_objects, mirror_targets, utcnow
from broadcaster.errors import DeliveryError, RetryableError
from status_page.mirror.site import Site, SiteObject, render_site
from status_page.mirror.targets import Target

log = logging.getLogger(__name__)

LOCK_TTL_S = 30.0  # renewed while the push runs; a dead pusher's lock lapses after this
ENTRY_POINTS = ("index.html", "history.atom", "history.rss", "maintenance.ics", "404.html")
_IN_CLAUSE = 500  # keys per IN (...): well under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class PushResult:
    """What one push did to one target."""

    target: str
    uploaded: int
    deleted: int
    objects: int
    error: DeliveryError | None = None

    def describe(self) -> str:
        done = f"{self.target}: {self.uploaded} of {self.objects} objects sent, {self.deleted} deleted"
        return done if self.error is None else f"{done}; {self.error.reason}"


def _rank(key: str) -> int:
    if key.startswith("assets/"):
        return 0
    return 2 if key in ENTRY_POINTS or key.startswith("api/") else 1


class Pusher:
    """Renders and pushes the mirror for one deployment (its database, its Redis, its targets)."""

    def __init__(self, settings: Settings, targets: Sequence[Target], *, max_age_s: int, concurrency: int = 8) -> None:
        self.settings = settings
        self.targets = tuple(targets)
        self.max_age_s = max_age_s
        self.concurrency = concurrency
        self.lock_wait_s = max(1.0, settings.job_timeout_s / 2)
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        # Made on first use: a web process builds every channel, and only reads the push state.
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url, pool=False)
        return self._engine

    async def push(self, *, full: bool = False) -> list[PushResult]:
        """Push the current page to every target; a database out of reach is a ``RetryableError``."""
        try:
            async with self._locked():
                now = utcnow()
                site = await render_site(self.settings, self.engine, max_age_s=self.max_age_s)
                return list(await asyncio.gather(*(self._push_target(t, site, now, full) for t in self.targets)))
        except SQLAlchemyError as exc:
            raise RetryableError(f"the mirror cannot read the page: database error ({type(exc).__name__})") from exc

    async def _push_target(self, target: Target, site: Site, now: datetime, full: bool) -> PushResult:
        objects = site.objects(target.layout)
        async with self.engine.connect() as conn:
            manifest = await _manifest(conn, target.name)
        sent: dict[str, str] = {}
        gone: list[str] = []
        error: DeliveryError | None = None
        try:
            held = await target.keys()  # what went missing there (a bucket emptied, a file removed) goes again
            changed = [k for k in objects if full or manifest.get(k) != objects[k].digest or k not in held]
            changed.sort(key=_rank)
            gone = [k for k in manifest if k not in objects and not k.startswith("assets/")]
            for rank in (0, 1, 2):
                await self._put_all(target, [k for k in changed if _rank(k) == rank], objects, now, sent)
            if gone:
                await target.delete(gone)
        except DeliveryError as exc:
            error, gone = exc, []
        finally:
            async with self.engine.begin() as conn:
                await _record(conn, target.name, now, sent, gone, len(objects), error)
        if error is not None:
            log.warning("mirror push to %s failed after %d objects: %s", target.name, len(sent), error.reason)
        else:
            log.debug("mirror push to %s: %d sent, %d deleted", target.name, len(sent), len(gone))
        return PushResult(target.name, len(sent), len(gone), len(objects), error)

    async def _put_all(
        self, target: Target, keys: list[str], objects: dict[str, SiteObject], now: datetime, sent: dict[str, str]
    ) -> None:
        gate = asyncio.Semaphore(self.concurrency)

        async def put(key: str) -> None:
            item = objects[key]
            async with gate:
                await target.put(key, item.stamped(now), item.content_type, item.cache_control)
            sent[key] = item.digest

        outcomes = await asyncio.gather(*(put(k) for k in keys), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for failure in failures:
            if not isinstance(failure, DeliveryError):
                raise failure
        if failures:
            first = failures[0]
            assert isinstance(first, DeliveryError)
            raise type(first)(f"{first.reason} ({len(failures)} of {len(keys)} objects failed)") from first

    async def states(self) -> list[dict[str, Any]]:
        """Each target's push record (``mirror_targets``), with its lag in seconds."""
        names = [t.name for t in self.targets]
        async with self.engine.connect() as conn:
            rows = {
                r["target"]: dict(r)
                for r in (await conn.execute(select(mirror_targets).where(mirror_targets.c.target.in_(names))))
                .mappings()
                .all()
            }
        now = utcnow()
        found = []
        for name in names:
            row = rows.get(name) or {"target": name, "last_attempt_at": None, "last_success_at": None}
            since = row.get("failing_since")
            found.append({**row, "lag_s": round((now - since).total_seconds(), 1) if since else 0.0})
        return found

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        client: aioredis.Redis = aioredis.from_url(  # type: ignore[no-untyped-call]
            self.settings.redis_url, socket_connect_timeout=2, socket_timeout=5
        )
        lock = client.lock(f"{self.settings.queue_name}:mirror:push", timeout=LOCK_TTL_S)
        try:
            try:
                held = await lock.acquire(blocking_timeout=self.lock_wait_s)
            except RedisError as exc:
                # No worker runs without Redis either: only the CLI gets here, and it may go ahead.
                log.warning("Redis out of reach (%s): pushing the mirror without its lock", type(exc).__name__)
                held = None
            if held is False:
                raise RetryableError("another push of the mirror is still under way")
            renew = asyncio.get_running_loop().create_task(_renew(lock)) if held else None
            try:
                yield
            finally:
                if renew is not None:
                    renew.cancel()
                    with contextlib.suppress(asyncio.CancelledError, LockError, RedisError):
                        await renew
                    with contextlib.suppress(LockError, RedisError):
                        await lock.release()
        finally:
            await client.aclose()

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


async def _renew(lock: Any) -> None:
    while True:
        await asyncio.sleep(LOCK_TTL_S / 3)
        await lock.reacquire()


async def _manifest(conn: AsyncConnection, target: str) -> dict[str, str]:
    query = select(mirror_objects.c.key, mirror_objects.c.digest).where(mirror_objects.c.target == target)
    return {row.key: row.digest for row in await conn.execute(query)}


async def _record(
    conn: AsyncConnection,
    target: str,
    now: datetime,
    sent: dict[str, str],
    gone: list[str],
    objects: int,
    error: DeliveryError | None,
) -> None:
    """Store what reached ``target`` (even when the push failed half way) and how the push went."""
    keys = [*sent, *gone]
    for start in range(0, len(keys), _IN_CLAUSE):
        chunk = keys[start : start + _IN_CLAUSE]
        await conn.execute(
            delete(mirror_objects).where(mirror_objects.c.target == target, mirror_objects.c.key.in_(chunk))
        )
    if sent:
        rows = [{"target": target, "key": k, "digest": d, "pushed_at": now} for k, d in sent.items()]
        await conn.execute(mirror_objects.insert(), rows)
    row = (await conn.execute(select(mirror_targets).where(mirror_targets.c.target == target))).mappings().first()
    values: dict[str, Any] = {"last_attempt_at": now}
    if error is None:
        values |= {"last_success_at": now, "failing_since": None, "last_error": None}
        values |= {"objects": objects, "uploaded": len(sent)}
    else:
        values |= {"last_error": error.reason, "failing_since": (row["failing_since"] if row else None) or now}
    if row is None:
        await conn.execute(mirror_targets.insert().values({"target": target, "objects": 0, "uploaded": 0, **values}))
    else:
        await conn.execute(mirror_targets.update().where(mirror_targets.c.target == target).values(**values))
