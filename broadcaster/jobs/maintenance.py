"""The maintenance cron: reminders, starts, completions and next occurrences, as they fall due.

It runs every ``maintenance_interval_s`` (default 1 s, so a window starts and ends within about
a second of its edges) and at worker start-up, when it catches up: a window whose start passed
while no worker ran is started then, with the real time in its update, and one whose end has
also passed is completed right after, in the same run. Each phase is one indexed query on
``incidents``; a quiet run writes nothing and logs only at DEBUG.

Each step is posted through ``broadcaster.posting`` with the idempotency key of its
maintenance, step and window edge (``MaintenanceStep.key``), claimed in the same transaction
as the update: a second worker, or this one restarted, replays it instead of posting it twice.
"""

from __future__ import annotations

import logging
from typing import Any

from broadcaster import posting
from broadcaster.actors import Actor
from broadcaster.db import utcnow
from broadcaster.domain import maintenance, maintenance_steps
from broadcaster.errors import Conflict, InputError
from broadcaster.post_requests import MaintenanceStep
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)

ACTOR = Actor.system("maintenance")


async def run_due(rt: Runtime) -> list[MaintenanceStep]:
    """Take every step due now, phase by phase; returns the steps this call posted."""
    taken: list[MaintenanceStep] = []
    for phase in maintenance.Step:
        async with rt.engine.connect() as conn:
            due = await maintenance_steps.due(conn, phase, utcnow())
        for step in due:
            try:
                result = await posting.post(rt, step, actor=ACTOR, idempotency_key=step.key)
            except Conflict as exc:  # taken or overtaken meanwhile (StepNotDue), or still in flight elsewhere
                log.debug("maintenance step %s skipped: %s", step.key, exc.message)
                continue
            except InputError as exc:  # e.g. the maintenance was deleted since the query
                log.warning("maintenance step %s refused: %s %s", step.key, exc.message, exc.fields)
                continue
            if result.replayed is not None:
                continue
            taken.append(step)
            posted = result.posted
            log.info(
                "maintenance %s: %s%s",
                step.incident_id,
                step.step,
                f" (update {posted.update_id})" if posted else "",
                extra={"incident_id": step.incident_id},
            )
    return taken


async def maintenance_job(ctx: dict[str, Any]) -> int:
    """arq cron entry: the steps due now."""
    runtime: Runtime = ctx["runtime"]
    return len(await run_due(runtime))
