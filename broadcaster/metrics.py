"""Prometheus metrics that hold across any number of web and worker processes.

Nothing here counts in process memory, because a scrape reaches one web process while the
work is done by many workers:

* deliveries by channel and state, the outbox backlog, and the time from posting an update
  to its first sent delivery per channel are read from the ledger at scrape time, so the
  numbers *are* the ledger's;
* the queue depth is Redis's ``ZCARD`` of the arq queue;
* job durations (and how long a due job waited for a worker) are histograms the workers
  add to in one Redis hash (``<queue_name>:metrics``), so every worker's jobs are counted.

``read_snapshot`` gathers all of it asynchronously; ``BroadcasterCollector(snapshot)`` is a
prometheus-client collector that turns a snapshot into metric families. HTTP latency is
per web process and lives in ``status_page/metrics.py``.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.db import deliveries, outbox, updates
from broadcaster.jobs.queue import Queue
from broadcaster.models import DeliveryState

log = logging.getLogger(__name__)

JOB_BUCKETS_S: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FIRST_DELIVERY_BUCKETS_S: tuple[float, ...] = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600)
STATES: tuple[str, ...] = tuple(s.value for s in DeliveryState)
JOB_OUTCOMES = ("complete", "retry", "error")


@dataclass
class Histogram:
    """Observations in fixed buckets: ``counts[i]`` for ``value <= bounds[i]``, the last for +Inf."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bucket_index(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus ``(le, cumulative count)`` pairs, ending with ``+Inf``."""
        running = 0
        pairs: list[tuple[str, float]] = []
        for bound, n in zip([*map(_le, self.bounds), "+Inf"], self.counts, strict=True):
            running += n
            pairs.append((bound, float(running)))
        return pairs


def bucket_index(bounds: Sequence[float], value: float) -> int:
    """Index of the smallest bucket holding ``value`` (``len(bounds)`` is +Inf)."""
    return bisect.bisect_left(bounds, value)


def _le(bound: float) -> str:
    return str(float(bound))


# --- job timings, kept in Redis by the workers ------------------------------------------------


def metrics_key(queue_name: str) -> str:
    return f"{queue_name}:metrics"


async def record_job(
    redis: Any, queue_name: str, function: str, outcome: str, duration_s: float, wait_s: float | None
) -> None:
    """Add one job run to the shared histograms (best effort: metrics never fail a job)."""
    fields: dict[str, int] = {f"duration|{function}|{outcome}|{bucket_index(JOB_BUCKETS_S, duration_s)}": 1}
    if wait_s is not None:
        fields[f"wait|{function}|{bucket_index(JOB_BUCKETS_S, max(0.0, wait_s))}"] = 1
    key = metrics_key(queue_name)
    try:
        pipe = redis.pipeline(transaction=False)
        for name, n in fields.items():
            pipe.hincrby(key, name, n)
        pipe.hincrbyfloat(key, f"duration_sum|{function}|{outcome}", duration_s)
        if wait_s is not None:
            pipe.hincrbyfloat(key, f"wait_sum|{function}", max(0.0, wait_s))
        await pipe.execute()
    except Exception as exc:  # Redis trouble shows in the queue metrics; the job goes on
        log.debug("job metrics not recorded: %s", exc)


@dataclass
class JobTimings:
    """Histograms read back from the Redis hash."""

    durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)  # (function, outcome)
    waits: dict[str, Histogram] = field(default_factory=dict)  # function

    @classmethod
    def parse(cls, raw: dict[Any, Any]) -> JobTimings:
        timings = cls()
        sums: dict[str, float] = {}
        for k, v in raw.items():
            name = k.decode() if isinstance(k, bytes) else str(k)
            value = v.decode() if isinstance(v, bytes) else str(v)
            parts = name.split("|")
            try:
                if parts[0] == "duration" and len(parts) == 4:
                    hist = timings.durations.setdefault((parts[1], parts[2]), Histogram(JOB_BUCKETS_S))
                    hist.counts[int(parts[3])] += int(value)
                elif parts[0] == "wait" and len(parts) == 3:
                    timings.waits.setdefault(parts[1], Histogram(JOB_BUCKETS_S)).counts[int(parts[2])] += int(value)
                elif parts[0] in ("duration_sum", "wait_sum"):
                    sums[name] = float(value)
            except (ValueError, IndexError):
                continue  # a field from another version: ignored, never a failed scrape
        for (function, outcome), hist in timings.durations.items():
            hist.total = sums.get(f"duration_sum|{function}|{outcome}", 0.0)
        for function, hist in timings.waits.items():
            hist.total = sums.get(f"wait_sum|{function}", 0.0)
        return timings


# --- the snapshot read at scrape time -----------------------------------------------------------


@dataclass
class Snapshot:
    """Everything the collector reports, read once per scrape."""

    deliveries: dict[tuple[str, str], int]  # (channel, state) -> rows
    first_delivery: dict[str, Histogram]  # channel -> seconds from posting to first sent row
    outbox_pending: int
    queue_depth: int | None  # None: Redis out of reach
    jobs: JobTimings
    database_up: bool = True


async def ledger_counts(engine: AsyncEngine) -> dict[tuple[str, str], int]:
    """Ledger rows per (channel, state)."""
    query = select(deliveries.c.channel, deliveries.c.state, func.count()).group_by(
        deliveries.c.channel, deliveries.c.state
    )
    async with engine.connect() as conn:
        return {(str(ch), str(st)): int(n) for ch, st, n in await conn.execute(query)}


async def first_delivery_times(engine: AsyncEngine) -> dict[str, Histogram]:
    """Per channel, the seconds from each update's posting to its first sent delivery."""
    first_sent = func.min(deliveries.c.sent_at).label("first_sent")
    query = (
        select(deliveries.c.channel, updates.c.created_at, first_sent)
        .join(updates, updates.c.id == deliveries.c.update_id)
        .where(deliveries.c.state == DeliveryState.SENT.value, deliveries.c.sent_at.is_not(None))
        .group_by(deliveries.c.update_id, deliveries.c.channel, updates.c.created_at)
    )
    result: dict[str, Histogram] = {}
    async with engine.connect() as conn:
        for channel, created_at, sent_at in await conn.execute(query):
            if created_at is None or sent_at is None:
                continue
            seconds = max(0.0, (sent_at - created_at).total_seconds())
            result.setdefault(str(channel), Histogram(FIRST_DELIVERY_BUCKETS_S)).observe(seconds)
    return result


async def outbox_backlog(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.done_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


async def job_timings(queue: Queue) -> JobTimings:
    try:
        pool: Any = await queue.pool()  # redis-py types hgetall as sync-or-async
        return JobTimings.parse(await pool.hgetall(metrics_key(queue.queue_name)))
    except Exception as exc:
        log.debug("job metrics not readable: %s", exc)
        return JobTimings()


async def read_snapshot(engine: AsyncEngine, queue: Queue) -> Snapshot:
    """Read the ledger and Redis for one scrape; a database outage gives ``database_up=False``."""
    try:
        counts = await ledger_counts(engine)
        first = await first_delivery_times(engine)
        backlog = await outbox_backlog(engine)
    except Exception as exc:  # reported as broadcaster_database_up 0, not as a failed scrape
        log.warning("metrics: the database did not answer: %s", exc)
        return Snapshot({}, {}, 0, await queue.depth(), await job_timings(queue), database_up=False)
    return Snapshot(counts, first, backlog, await queue.depth(), await job_timings(queue))


class BroadcasterCollector:
    """A prometheus-client collector for one ``Snapshot``."""

    def __init__(self, snapshot: Snapshot, channels: Sequence[str] = ()) -> None:
        self.snapshot = snapshot
        self.channels = channels  # enabled channels: reported with zeros before their first row

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        rows = GaugeMetricFamily(
            "broadcaster_deliveries",
            "Ledger rows by channel and state (pending, sending, retry, sent, failed).",
            labels=["channel", "state"],
        )
        sent = CounterMetricFamily(
            "broadcaster_deliveries_sent", "Deliveries sent, from the ledger (sent is final).", labels=["channel"]
        )
        channels = sorted({*self.channels, *(ch for ch, _ in snap.deliveries)})
        for channel in channels:
            for state in STATES:
                rows.add_metric([channel, state], snap.deliveries.get((channel, state), 0))
            sent.add_metric([channel], snap.deliveries.get((channel, DeliveryState.SENT.value), 0))
        yield rows
        yield sent

        first = HistogramMetricFamily(
            "broadcaster_first_delivery_seconds",
            "Time from posting an update to its first sent delivery, per channel.",
            labels=["channel"],
        )
        for channel, hist in sorted(snap.first_delivery.items()):
            first.add_metric([channel], hist.cumulative(), _finite(hist.total))
        yield first

        yield GaugeMetricFamily(
            "broadcaster_database_up", "1 when the database answered this scrape.", value=1 if snap.database_up else 0
        )
        backlog = GaugeMetricFamily("broadcaster_outbox_pending", "Outbox rows not fanned out yet.")
        if snap.database_up:
            backlog.add_metric([], snap.outbox_pending)
        yield backlog
        yield GaugeMetricFamily(
            "broadcaster_redis_up", "1 when Redis answered this scrape.", value=0 if snap.queue_depth is None else 1
        )
        depth = GaugeMetricFamily("broadcaster_queue_depth", "Jobs in the arq queue (due and deferred).")
        if snap.queue_depth is not None:
            depth.add_metric([], snap.queue_depth)
        yield depth

        duration = HistogramMetricFamily(
            "broadcaster_job_duration_seconds",
            "Run time of worker jobs, by function and outcome.",
            labels=["function", "outcome"],
        )
        for (function, outcome), hist in sorted(snap.jobs.durations.items()):
            duration.add_metric([function, outcome], hist.cumulative(), _finite(hist.total))
        yield duration
        wait = HistogramMetricFamily(
            "broadcaster_job_wait_seconds", "Time a due job waited in the queue for a worker.", labels=["function"]
        )
        for function, hist in sorted(snap.jobs.waits.items()):
            wait.add_metric([function], hist.cumulative(), _finite(hist.total))
        yield wait


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
