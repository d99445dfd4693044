"""The auto-publish cron: an opening draft whose rule opted in is published once its time has come.

Every ``alerts_interval_s`` (default 1 s) the worker looks for pending drafts whose ``publish_at`` has
passed (one indexed query; quiet at DEBUG) and publishes each as ``system:alerts`` with the idempotency
key ``draft:<id>`` (``DraftPublication.key``), claimed in the same transaction as the update; the
draft's own state change is in it too (``broadcaster.alerts.publication``). So however many workers
run the cron, and even if a commander publishes at the same moment, the incident is posted once.
A draft the posting service refuses (a component deleted since) stops publishing itself and waits
for a human; the log says why.
"""

from __future__ import annotations

import logging
from typing import Any

from arq import cron
from arq.cron import CronJob
from sqlalchemy import select

from broadcaster.actors import Actor
from broadcaster.alerts import drafts
from broadcaster.config import Settings
from broadcaster.db import drafts as drafts_table
from broadcaster.db import utcnow
from broadcaster.errors import Conflict, InputError
from broadcaster.models import DraftState
from broadcaster.post_requests import DraftPublication
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)

ACTOR = Actor.system("alerts")


async def run_due(rt: Runtime) -> list[str]:
    """Publish every draft due now; returns the ids this call published."""
    now = utcnow()
    async with rt.engine.connect() as conn:
        due = (
            await conn.execute(
                select(drafts_table.c.id)
                .where(drafts_table.c.state == DraftState.PENDING.value, drafts_table.c.publish_at <= now)
                .order_by(drafts_table.c.publish_at)
            )
        ).scalars()
        ids = [str(i) for i in due]
    published = []
    for draft_id in ids:
        try:
            result = await drafts.publish(rt, draft_id, ACTOR, idempotency_key=DraftPublication(draft_id).key)
        except Conflict as exc:  # decided meanwhile, or being published by another worker
            log.debug("auto-publish of draft %s skipped: %s", draft_id, exc.message)
            continue
        except InputError as exc:
            log.warning(
                "draft %s cannot publish itself (%s %s); it waits for a human", draft_id, exc.message, exc.fields
            )
            async with rt.engine.begin() as conn:
                await conn.execute(drafts_table.update().where(drafts_table.c.id == draft_id).values(publish_at=None))
            continue
        if result.replayed is None and result.posted is not None:
            published.append(draft_id)
            log.info("draft %s published by itself as update %s", draft_id, result.posted.update_id)
    return published


async def autopublish_job(ctx: dict[str, Any]) -> int:
    """arq cron entry: the drafts due now."""
    runtime: Runtime = ctx["runtime"]
    return len(await run_due(runtime))


def cron_job(settings: Settings) -> CronJob:
    """The cron the worker lists, every ``alerts_interval_s`` (1-59), and at start-up to catch up."""
    period = max(1, min(59, settings.alerts_interval_s))
    return cron(
        autopublish_job,
        name="alerts_autopublish",
        second=set(range(0, 60, period)),
        run_at_startup=True,
        keep_result=0,
        timeout=settings.job_timeout_s,
    )
