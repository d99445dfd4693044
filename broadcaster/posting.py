"""Posting an update from anywhere that is not the web app (CLI, cron, demo)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster import contact_notify, incidents
from broadcaster.config import Settings
from broadcaster.incidents import Posted
from broadcaster.runtime import Runtime
from broadcaster.schemas import IncidentIn, UpdateIn, validate


async def post(rt: Runtime, body: dict[str, Any], incident_id: str | None = None, author: str = "cli",
               drill: bool = False, meta: dict[str, Any] | None = None,
               within: Callable[[AsyncConnection, Posted], Awaitable[None]] | None = None) -> tuple[Posted, bool]:
    """Record the update in one transaction, then enqueue its fan-out (or leave it to the relay).

    ``meta`` is stored on a new incident; ``within`` runs in the same transaction (a playbook
    puts its contacts on the incident there). The incident's contacts, if any, are notified.
    """
    enabled = list(rt.registry.enabled)
    async with rt.engine.begin() as conn:
        if incident_id:
            posted = await incidents.add_update(conn, incident_id, validate(UpdateIn, body), enabled, author)
        else:
            posted = await incidents.create_incident(conn, validate(IncidentIn, body), enabled, author, drill=drill,
                                                     meta=meta)
        if within is not None:
            await within(conn, posted)
    return posted, await dispatch(rt, posted)


async def dispatch(rt: Runtime, posted: Posted) -> bool:
    """After the commit: enqueue the fan-out, tell live pages, notify the incident's team.

    False when Redis is out of reach; the outbox relay enqueues the fan-out later.
    """
    queued = True
    for channel in posted.channels:
        queued = await rt.queue.enqueue_fanout(posted.update_id, channel) and queued
    await rt.bus.publish("update", {"incident_id": posted.incident_id, "update_id": posted.update_id,
                                    "drill": posted.drill})
    await contact_notify.after_post(rt, posted.incident_id, posted.update_id)
    return queued


async def post_from_cli(settings: Settings, body: dict[str, Any], incident_id: str | None) -> tuple[str, str, bool]:
    rt = Runtime.build(settings)
    try:
        posted, queued = await post(rt, body, incident_id)
    finally:
        await rt.aclose()
    return posted.incident_id, posted.update_id, queued
