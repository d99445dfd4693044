"""The arq worker: ``fanout`` and ``deliver_batch`` jobs, and the outbox-relay cron.

Run it with ``broadcaster worker``. While it runs, its heartbeat (``jobs.heartbeat``) tells
the other workers it is alive; its claims carry its id. On SIGTERM or SIGINT it takes no new
job and tells running batches to stop (they finish what is on the wire, record every
outcome and hand the rest back), waits for them at most ``job_completion_wait`` (the job
timeout), releases anything it still holds and deletes its heartbeat, then exits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
import time
from signal import Signals
from typing import Any

from arq import Retry, cron
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker, func

from broadcaster.alerts import autopublish, notices
from broadcaster.config import Settings, get_settings
from broadcaster.delivery.completion import announce_if_finished
from broadcaster.delivery.preflight import preflight_job
from broadcaster.errors import ConfigError, RetryableError
from broadcaster.jobs import confirmations, contact_notices, heartbeat, listening, page_copies
from broadcaster.jobs.maintenance import maintenance_job
from broadcaster.jobs.queue import DELIVER_BATCH, FANOUT, Queue, redis_settings
from broadcaster.jobs.reminders import reminders_job
from broadcaster.logs import log_context
from broadcaster.metrics import record_job
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)

# The ledger decides when to give up; arq only has to keep re-running.
UNBOUNDED_TRIES = 10_000


def _runtime(ctx: dict[str, Any]) -> Runtime:
    runtime: Runtime = ctx["runtime"]
    return runtime


async def fanout_job(ctx: dict[str, Any], update_id: str, channel: str) -> int:
    try:
        return await _runtime(ctx).fanout.fanout(update_id, channel)
    except RetryableError as exc:
        raise Retry(defer=2) from exc
    except ConfigError:
        log.error("channel %s is not enabled on this worker; update %s left in the outbox", channel, update_id)
        raise


async def deliver_batch_job(ctx: dict[str, Any], update_id: str, channel: str, first_id: int, last_id: int) -> int:
    fanout = _runtime(ctx).fanout
    held = heartbeat.job_name(update_id, channel, first_id, last_id)
    if fanout.heartbeat is not None:  # should this worker die before it claims a row, the relay re-enqueues it
        await fanout.heartbeat.hold(held)
    try:
        report = await fanout.deliver_batch(update_id, channel, first_id, last_id)
    finally:
        if fanout.heartbeat is not None:
            await asyncio.shield(fanout.heartbeat.let_go(held))
    log.debug(
        "batch %d-%d: %d sent, %d failed, %d to retry, %d handed back",
        first_id,
        last_id,
        report.sent,
        report.failed,
        report.retry,
        report.handed_back,
    )
    if report.retry_in_s is not None:
        raise Retry(defer=report.retry_in_s)
    await announce_if_finished(fanout, update_id, channel)
    return report.sent


async def relay_job(ctx: dict[str, Any]) -> dict[str, int]:
    return await _runtime(ctx).fanout.relay()


def _make_startup(settings: Settings) -> Any:
    async def startup(ctx: dict[str, Any]) -> None:
        queue = Queue(settings.redis_url, settings.queue_name, pool=ctx["redis"])
        runtime = ctx["runtime"] = Runtime.build(settings, queue=queue)
        beat = heartbeat.Heartbeat(ctx["redis"], settings.queue_name)
        await beat.start()
        runtime.fanout.heartbeat = beat
        log.info("worker %s started", beat.worker_id)

    return startup


async def _shutdown(ctx: dict[str, Any]) -> None:
    runtime: Runtime | None = ctx.get("runtime")
    if runtime is None:
        return
    fanout = runtime.fanout
    fanout.stop()
    try:  # every job has ended: what this worker still holds goes back in line before it says it is gone
        released = await fanout.release_own_claims()
        if released:
            log.info("handed back %d ranges on the way out", released)
    except Exception:
        log.exception("could not hand back this worker's claims; the relay takes them back once its heartbeat expires")
    if fanout.heartbeat is not None:
        await fanout.heartbeat.stop()
    await fanout.aclose()
    await runtime.aclose()


def instrumented(job: WorkerCoroutine, name: str, queue_name: str) -> WorkerCoroutine:
    """``job`` with its log lines carrying job id, update id and channel, and its run time
    (and the time it waited once due) added to the shared histograms of ``broadcaster.metrics``."""

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        fields: dict[str, Any] = {"job_id": ctx.get("job_id")}
        if name in (FANOUT, DELIVER_BATCH) and len(args) >= 2:
            fields.update(update_id=args[0], channel=args[1])
        score = ctx.get("score")
        wait_s = time.time() - score / 1000 if isinstance(score, int | float) else None
        started = time.monotonic()
        outcome = "error"
        with log_context(**fields):
            try:
                result = await job(ctx, *args, **kwargs)
                outcome = "complete"
                return result
            except Retry:
                outcome = "retry"
                raise
            except asyncio.CancelledError:
                outcome = "cancelled"  # a timeout or a shutdown: nothing may be awaited any more
                raise
            finally:
                duration_s = time.monotonic() - started
                log.log(
                    logging.DEBUG if outcome == "complete" else logging.INFO,
                    "job %s %s in %.3f s",
                    name,
                    outcome,
                    duration_s,
                )
                if outcome != "cancelled" and "redis" in ctx:
                    await record_job(ctx["redis"], queue_name, name, outcome, duration_s, wait_s)

    return run


def _instrument_function(function: Function, queue_name: str) -> Function:
    return dataclasses.replace(function, coroutine=instrumented(function.coroutine, function.name, queue_name))


def _instrument_cron(job: CronJob, queue_name: str) -> CronJob:
    return dataclasses.replace(job, coroutine=instrumented(job.coroutine, job.name, queue_name))


def functions(settings: Settings) -> list[Function]:
    timeout = settings.job_timeout_s
    return [
        _instrument_function(f, settings.queue_name)
        for f in (
            func(fanout_job, name=FANOUT, keep_result=0, max_tries=UNBOUNDED_TRIES, timeout=timeout),
            func(deliver_batch_job, name=DELIVER_BATCH, keep_result=0, max_tries=UNBOUNDED_TRIES, timeout=timeout),
            confirmations.function(settings),
            contact_notices.function(settings),
            page_copies.function(settings),
            notices.function(settings),
        )
    ]


HEALTH_CHECK_INTERVAL_S = 15  # arq's own "recording health" log line; liveness is ``jobs.heartbeat``


def _reminder_cron(settings: Settings) -> Any:
    """The cadence-reminder cron, every ``reminder_interval_s`` (whole minutes past 59 s)."""
    period = max(1, settings.reminder_interval_s)
    if period < 60:
        when: dict[str, Any] = {"second": set(range(0, 60, period))}
    else:
        when = {"minute": set(range(0, 60, max(1, min(59, period // 60)))), "second": 0}
    return cron(
        reminders_job, name="reminders", keep_result=0, timeout=settings.job_timeout_s, run_at_startup=True, **when
    )


def _preflight_crons(settings: Settings) -> list[CronJob]:
    """The channels' pre-flight check every ``channel_check_interval_minutes`` (none when 0).

    It runs at the minutes past the hour that the interval divides (every 15: :00, :15, :30,
    :45); from 60 up, at the top of every ``interval // 60``-th hour.
    """
    minutes = settings.channel_check_interval_minutes
    if minutes <= 0:
        return []
    if minutes < 60:
        when: dict[str, Any] = {"minute": set(range(0, 60, minutes)), "second": 0}
    else:
        when = {"hour": set(range(0, 24, min(23, minutes // 60))), "minute": 0, "second": 0}
    # The checks (each within channel_check_timeout_s, all at once), then the commanders' notices.
    timeout_s = settings.channel_check_timeout_s + settings.job_timeout_s
    return [cron(preflight_job, name="preflight", keep_result=0, timeout=timeout_s, **when)]


class ResilientWorker(Worker):
    """An arq worker that rides out a Redis outage instead of exiting.

    arq's poll loop lets a Redis error escape, which ends ``main()`` and cancels every job in
    flight (their recipients are then sent again after the lease). Here the poll just waits
    for Redis to come back; jobs lost with Redis's memory are re-enqueued by the relay.
    """

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (OSError, ConnectionError, TimeoutError) as exc:
            await self._redis_away(exc)
        except Exception as exc:  # redis-py raises its own hierarchy
            if not exc.__class__.__module__.startswith("redis"):
                raise
            await self._redis_away(exc)

    async def _redis_away(self, exc: Exception) -> None:
        log.warning("Redis out of reach (%s); waiting for it", exc)
        await asyncio.sleep(1.0)

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        """Take no new job, and tell running batches to stop (``Fanout.stop``) before waiting for them."""
        runtime: Runtime | None = self.ctx.get("runtime")
        if runtime is not None:
            runtime.fanout.stop()
        super().handle_sig_wait_for_completion(signum)


def make_worker(settings: Settings | None = None, **overrides: Any) -> Worker:
    """An arq ``Worker`` for ``settings``; ``overrides`` go to ``Worker`` (e.g. ``burst=True``)."""
    settings = settings or get_settings()
    interval = max(1, min(59, settings.relay_interval_s))
    options: dict[str, Any] = dict(
        functions=functions(settings),
        cron_jobs=[
            _instrument_cron(job, settings.queue_name)
            for job in (
                cron(
                    relay_job,
                    name="relay",
                    second=set(range(0, 60, interval)),
                    run_at_startup=True,
                    keep_result=0,
                    timeout=settings.job_timeout_s,
                ),
                _reminder_cron(settings),
                cron(
                    maintenance_job,
                    name="maintenance",
                    second=set(range(0, 60, max(1, min(59, settings.maintenance_interval_s)))),
                    run_at_startup=True,  # catch up at once on what fell due while no worker ran
                    keep_result=0,
                    timeout=settings.job_timeout_s,
                ),
                *_preflight_crons(settings),
                autopublish.cron_job(settings),
                listening.cron_job(settings),
            )
        ],
        redis_settings=redis_settings(settings.redis_url),
        queue_name=settings.queue_name,
        max_jobs=settings.max_jobs,
        job_timeout=settings.job_timeout_s,
        keep_result=0,
        on_startup=_make_startup(settings),
        on_shutdown=_shutdown,
        handle_signals=True,
        # A batch asked to stop ends within its sends on the wire; a job that does not is cut off by its timeout.
        job_completion_wait=math.ceil(settings.job_timeout_s),
        poll_delay=0.05,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
    )
    options.update(overrides)
    worker = ResilientWorker(**options)
    return worker
