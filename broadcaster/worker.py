"""The arq worker: ``fanout`` and ``deliver_batch`` jobs, and the outbox-relay cron.

Run it with ``broadcaster worker`` (or ``arq broadcaster.worker.WorkerSettings``).
"""

from __future__ import annotations

import logging
from typing import Any

from arq import Retry, cron
from arq.worker import Function, Worker, func

from broadcaster import confirmations
from broadcaster.config import Settings, get_settings
from broadcaster.errors import ConfigError, RetryableError
from broadcaster.queue import DELIVER_BATCH, FANOUT, Queue, redis_settings
from broadcaster.reminders import reminders_job
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
    report = await _runtime(ctx).fanout.deliver_batch(update_id, channel, first_id, last_id)
    if report.retry_in_s is not None:
        raise Retry(defer=report.retry_in_s)
    return report.sent


async def relay_job(ctx: dict[str, Any]) -> dict[str, int]:
    return await _runtime(ctx).fanout.relay()


def _make_startup(settings: Settings) -> Any:
    async def startup(ctx: dict[str, Any]) -> None:
        queue = Queue(settings.redis_url, settings.queue_name, pool=ctx["redis"])
        ctx["runtime"] = Runtime.build(settings, queue=queue)

    return startup


async def _shutdown(ctx: dict[str, Any]) -> None:
    runtime: Runtime | None = ctx.get("runtime")
    if runtime is not None:
        await runtime.aclose()


def functions(settings: Settings) -> list[Function]:
    timeout = settings.job_timeout_s
    return [
        func(fanout_job, name=FANOUT, keep_result=0, max_tries=UNBOUNDED_TRIES, timeout=timeout),
        func(deliver_batch_job, name=DELIVER_BATCH, keep_result=0, max_tries=UNBOUNDED_TRIES, timeout=timeout),
        confirmations.function(settings),
    ]


def _reminder_cron(settings: Settings) -> Any:
    """The cadence-reminder cron, every ``reminder_interval_s`` (whole minutes past 59 s)."""
    period = max(1, settings.reminder_interval_s)
    if period < 60:
        when: dict[str, Any] = {"second": set(range(0, 60, period))}
    else:
        when = {"minute": set(range(0, 60, max(1, min(59, period // 60)))), "second": 0}
    return cron(reminders_job, name="reminders", keep_result=0, timeout=settings.job_timeout_s,
                run_at_startup=True, **when)


def make_worker(settings: Settings | None = None, **overrides: Any) -> Worker:
    """An arq ``Worker`` for ``settings``; ``overrides`` go to ``Worker`` (e.g. ``burst=True``)."""
    settings = settings or get_settings()
    interval = max(1, min(59, settings.relay_interval_s))
    options: dict[str, Any] = dict(
        functions=functions(settings),
        cron_jobs=[cron(relay_job, name="relay", second=set(range(0, 60, interval)), run_at_startup=True,
                        keep_result=0, timeout=settings.job_timeout_s),
                   _reminder_cron(settings)],
        redis_settings=redis_settings(settings.redis_url),
        queue_name=settings.queue_name,
        max_jobs=settings.max_jobs,
        job_timeout=settings.job_timeout_s,
        keep_result=0,
        on_startup=_make_startup(settings),
        on_shutdown=_shutdown,
        handle_signals=True,
        poll_delay=0.05,
    )
    options.update(overrides)
    worker = Worker(**options)
    return worker
