"""Refreshing the page's copies (the mirror) after a change that posts no update.

An update reaches a copy through the fan-out like any broadcast channel (the ledger's row, its
claim and its retries). A change that posts nothing (a quiet component change, the brand, the
contact channels without a notice, an import) tells live pages on the bus and, through
``page_changed``, enqueues the arq job ``refresh_page_copy`` for each enabled ``PageCopy``. Job ids
are per channel and per second, due at the end of that second: a burst of changes is one push,
and a change is never left out by a push that had already read the page.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from arq.worker import Function, func

from broadcaster.config import Settings
from broadcaster.delivery.channel import PageCopy
from broadcaster.errors import DeliveryError, RetryableError
from broadcaster.jobs.side_jobs import retry_or_give_up
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)

REFRESH = "refresh_page_copy"


def page_copies(rt: Runtime) -> dict[str, PageCopy]:
    return {name: ch for name, ch in rt.registry.enabled.items() if isinstance(ch, PageCopy)}


async def request_refresh(rt: Runtime) -> bool:
    """Enqueue a refresh of every page copy; False when Redis is out of reach (the next push catches up)."""
    queued = True
    for name in page_copies(rt):
        due = math.floor(time.time()) + 1
        job_id = f"{REFRESH}:{name}:{due}"
        queued = await rt.queue.enqueue(REFRESH, name, job_id=job_id, defer_s=max(0.0, due - time.time())) and queued
    return queued


async def page_changed(rt: Runtime, kind: str, event: Mapping[str, Any]) -> None:
    """A public change that posts no update: live pages hear ``kind`` on the bus, the copies are refreshed."""
    await rt.bus.publish(kind, event)
    await request_refresh(rt)


async def refresh_job(ctx: dict[str, Any], channel: str) -> str:
    rt: Runtime = ctx["runtime"]
    copy = page_copies(rt).get(channel)
    if copy is None:
        log.warning("page copy %s is not enabled on this worker", channel)
        return "not enabled"
    try:
        return await copy.refresh()
    except RetryableError as exc:
        return retry_or_give_up(ctx, exc, rt.settings, rt.settings.max_attempts, f"refreshing {channel}")
    except DeliveryError as exc:
        log.warning("refreshing %s failed: %s", channel, exc.reason)
        return f"failed: {exc.reason}"


def function(settings: Settings) -> Function:
    """The arq function to list in the worker."""
    return func(
        refresh_job, name=REFRESH, keep_result=0, max_tries=settings.max_attempts, timeout=settings.job_timeout_s
    )
