"""The console's delivery views: an incident's updates, each update's ledger live, retries, and
which update every channel shows now, with its last pre-flight check and last successful
delivery (``/console/channels``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from broadcaster.delivery import deadletter, ledger, preflight
from broadcaster.delivery.completion import fanned_out_to_nobody
from broadcaster.domain import audit, replies
from broadcaster.domain import incidents as incident_store
from broadcaster.domain.subscribers import URL_CHANNELS
from broadcaster.errors import InputError
from broadcaster.i18n import pgettext
from broadcaster.jobs.page_copies import page_copies
from broadcaster.models import CLOSED_STATUSES, ChannelKind, Role
from broadcaster.runtime import Runtime
from broadcaster.security import mask_url
from status_page.auth import require_role, user_actor
from status_page.console._kit import commander, late, page
from status_page.http import runtime
from status_page.live import live_events, sse_response

SSE_LIFETIME_S = 300.0
SSE_REFRESH_S = 5.0


# --- incident, deliveries, consistency ----------------------------------------------------------


async def incident_page(request: Request) -> Response:
    user = require_role(request, Role.VIEWER)
    rt = runtime(request)
    incident_id = request.path_params["incident_id"]
    async with rt.engine.connect() as conn:
        incident = await incident_store.get_incident_row(conn, incident_id)
        update_rows = (await incident_store.list_updates(conn, [incident_id]))[incident_id]
        changes = await incident_store.update_changes(conn, [u["id"] for u in update_rows])
        counts = {u["id"]: await ledger.delivery_counts(conn, u["id"]) for u in update_rows}
        listened = (await replies.listened(conn, [incident_id])).get(incident_id)
    return page(
        request,
        "console/incident.html",
        user,
        incident=incident,
        updates=update_rows,
        changes=changes,
        counts=counts,
        late=late(incident),
        closed=incident["status"] in CLOSED_STATUSES,
        listened=listened,
    )


async def _delivery_state(rt: Runtime, update_id: str) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        counts = await ledger.delivery_counts(conn, update_id)
        failures = await ledger.failures(conn, update_id)
    return {
        "update_id": update_id,
        "counts": counts,
        "failures": [
            {
                **f,
                "address": mask_url(f["address"]) if f["channel"] in URL_CHANNELS and f["address"] else f["address"],
                "updated_at": f["updated_at"].isoformat() if f["updated_at"] else None,
            }
            for f in failures
        ],
    }


async def deliveries_page(request: Request) -> Response:
    user = require_role(request, Role.VIEWER)
    rt = runtime(request)
    update_id = request.path_params["update_id"]
    async with rt.engine.connect() as conn:
        update = await incident_store.get_update_row(conn, update_id)
        incident = await incident_store.get_incident_row(conn, update["incident_id"])
    state = await _delivery_state(rt, update_id)
    return page(request, "console/deliveries.html", user, update=update, incident=incident, **state)


async def deliveries_json(request: Request) -> Response:
    require_role(request, Role.VIEWER)
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        await incident_store.get_update_row(conn, request.path_params["update_id"])
    return JSONResponse(
        await _delivery_state(rt, request.path_params["update_id"]), headers={"Cache-Control": "no-store"}
    )


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def deliveries_events(request: Request) -> Response:
    """Server-sent events: the update's counts whenever a batch of it was delivered (and every 5 s)."""
    require_role(request, Role.VIEWER)
    rt = runtime(request)
    update_id = request.path_params["update_id"]
    async with rt.engine.connect() as conn:
        await incident_store.get_update_row(conn, update_id)

    async def stream() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SSE_LIFETIME_S
        with live_events(request.app).connect() as events:
            yield b"retry: 2000\n\n"
            yield _sse("counts", await _delivery_state(rt, update_id))
            while loop.time() < deadline:
                try:
                    event = await asyncio.wait_for(events.get(), SSE_REFRESH_S)
                except TimeoutError:
                    event = {}
                if event is None:
                    yield b"retry: 1000\n\n"  # this process is stopping: come back to another
                    return
                if event and (event.get("kind") != "deliveries" or event.get("update_id") != update_id):
                    continue
                await asyncio.sleep(0.2)  # fold a burst of batch events into one refresh
                while not events.empty():
                    if events.get_nowait() is None:
                        yield b"retry: 1000\n\n"
                        return
                yield _sse("counts", await _delivery_state(rt, update_id))

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


async def console_events(request: Request) -> Response:
    """Server-sent events for the dashboard banner: ``reminder``, ``update`` and ``draft`` (an alert proposes one)."""
    require_role(request, Role.VIEWER)
    return sse_response(request, ("reminder", "update", "draft"), max_age_s=SSE_LIFETIME_S)


async def retry_failed(request: Request) -> Response:
    """Put an update's failed rows (of one channel, or one row) back in line: ``deadletter.replay``."""
    user = await commander(request)
    rt = runtime(request)
    update_id = request.path_params["update_id"]
    form = await request.form()
    channel = str(form.get("channel") or "")
    raw_id = str(form.get("delivery_id") or "")
    if channel not in rt.registry.enabled:
        raise InputError("unknown or disabled channel", {"channel": "must be an enabled channel"})
    delivery_ids = [int(raw_id)] if raw_id.isdigit() else None
    async with rt.engine.connect() as conn:
        await incident_store.get_update_row(conn, update_id)
    reset, _ = await deadletter.replay(rt.engine, rt.queue, update_id, channel, rt.settings.batch_size, delivery_ids)
    async with rt.engine.begin() as conn:
        await audit.record(
            conn,
            str(user_actor(user)),
            "deliveries.retry",
            target=update_id,
            channel=channel,
            rows=reset,
            delivery_id=delivery_ids[0] if delivery_ids else None,
        )
    return RedirectResponse(f"/console/updates/{update_id}", status_code=303)


def kind_label(kind: ChannelKind) -> str:
    """A channel's kind in the reader's language (the English is the kind itself)."""
    if kind is ChannelKind.BROADCAST:
        return pgettext("channel kind", "broadcast")
    return pgettext("channel kind", "subscriber")


async def channels_page(request: Request) -> Response:
    """Consistency: which update each channel shows now, which channels lag the latest, and whether
    each passed its last pre-flight check."""
    user = require_role(request, Role.VIEWER)
    rt = runtime(request)
    checks = {check.channel: check for check in await preflight.stored(rt)}
    copies = {name: await copy.copy_state() for name, copy in page_copies(rt).items()}  # the mirror's pushes
    async with rt.engine.connect() as conn:
        shown = await ledger.current_updates(conn)
        recent = await incident_store.list_incidents(conn, limit=20, include_drills=True)
        update_rows = await incident_store.list_updates(conn, [i["id"] for i in recent])
    titles = {i["id"]: i["name"] for i in recent}
    latest_rows = sorted(
        (u for rows in update_rows.values() for u in rows), key=lambda u: u["created_at"], reverse=True
    )
    rows = []
    for name, channel in rt.registry.enabled.items():
        latest = next((u for u in latest_rows if name in (u["channels"] or [])), None)
        current = shown.get(name)
        behind = latest is not None and (
            current is None or (current["update_id"] != latest["id"] and current["sent_at"] < latest["created_at"])
        )
        if behind and latest is not None and channel.kind is ChannelKind.SUBSCRIBER:
            async with rt.engine.connect() as conn:  # fanned out to nobody: nothing is owed
                behind = not await fanned_out_to_nobody(conn, latest["id"], name)
        rows.append(
            {
                "name": name,
                "title": type(channel).title,
                "kind": channel.kind.value,
                "kind_label": kind_label(channel.kind),
                "current": current,
                "latest": latest,
                "behind": behind,
                "current_title": titles.get(current["incident_id"], current["incident_id"]) if current else None,
                "latest_title": titles.get(latest["incident_id"]) if latest else None,
                "check": checks.get(name),
                "page_copy": copies.get(name),
            }
        )
    return page(request, "console/channels.html", user, rows=rows)


routes = [
    Route("/console/events", console_events, methods=["GET"]),
    Route("/console/incidents/{incident_id}", incident_page, methods=["GET"]),
    Route("/console/updates/{update_id}", deliveries_page, methods=["GET"]),
    Route("/console/updates/{update_id}/deliveries.json", deliveries_json, methods=["GET"]),
    Route("/console/updates/{update_id}/events", deliveries_events, methods=["GET"]),
    Route("/console/updates/{update_id}/retry", retry_failed, methods=["POST"]),
    Route("/console/channels", channels_page, methods=["GET"]),
]
