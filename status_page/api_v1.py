"""The admin REST API (``/api/v1``): components, incidents, updates, preview, ledger, subscribers."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster import component_changes, ledger
from broadcaster import components as component_store
from broadcaster import incidents as incident_store
from broadcaster import subscribers as subscriber_store
from broadcaster.incidents import Posted
from broadcaster.posting import dispatch
from broadcaster.preview import preview
from broadcaster.render import iso, markdown_to_html
from broadcaster.runtime import Runtime
from broadcaster.schemas import (
    ComponentIn,
    ComponentPatch,
    IncidentIn,
    PreviewIn,
    SubscriberIn,
    UpdateIn,
    validate,
)
from status_page.api_v1_ops import idempotent_post
from status_page.http import query_int, read_json, require_token, runtime

log = logging.getLogger(__name__)


def component_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "description": row["description"], "status": row["status"],
        "group": bool(row["is_group"]), "group_id": row["group_id"], "position": row["position"],
        "showcase": bool(row["showcase"]), "only_show_if_degraded": bool(row["only_show_if_degraded"]),
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
    }


def update_json(row: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"], "incident_id": row["incident_id"], "number": row["number"], "status": row["status"],
        "body": row["body"], "body_html": markdown_to_html(row["body"]), "created_at": iso(row["created_at"]),
        "next_update_at": iso(row["next_update_at"]), "channels": row["channels"], "agent": row["agent"],
        "author": row["author"],
        "affected_components": [
            {"code": c["component_id"], "name": c["display_name"], "old_status": c["old_status"],
             "new_status": c["new_status"]} for c in changes
        ],
    }


async def incident_json(rt: Runtime, incident_id: str) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        incident = await incident_store.get_incident_row(conn, incident_id)
        update_rows = (await incident_store.list_updates(conn, [incident_id]))[incident_id]
        changes = await incident_store.update_changes(conn, [u["id"] for u in update_rows])
        component_ids = await incident_store.incident_component_ids(conn, incident_id)
    return {
        "id": incident["id"], "kind": incident["kind"], "name": incident["name"], "status": incident["status"],
        "impact": incident["impact"], "drill": bool(incident["drill"]),
        "created_at": iso(incident["created_at"]), "updated_at": iso(incident["updated_at"]),
        "started_at": iso(incident["started_at"]), "monitoring_at": iso(incident["monitoring_at"]),
        "resolved_at": iso(incident["resolved_at"]), "scheduled_for": iso(incident["scheduled_for"]),
        "scheduled_until": iso(incident["scheduled_until"]), "next_update_at": iso(incident["next_update_at"]),
        "components": component_ids,
        "url": f"{rt.settings.public_url}/incidents/{incident['id']}",
        "updates": [update_json(u, changes[u["id"]]) for u in update_rows],
    }


async def list_components(request: Request) -> Response:
    await require_token(request)
    async with runtime(request).engine.connect() as conn:
        rows = await component_store.list_components(conn)
    return JSONResponse([component_json(r) for r in rows])


async def create_component(request: Request) -> Response:
    await require_token(request)
    data = validate(ComponentIn, await read_json(request))
    async with runtime(request).engine.begin() as conn:
        row = await component_store.create_component(conn, data)
    return JSONResponse(component_json(row), status_code=201)


async def patch_component(request: Request) -> Response:
    """Edit a component; ``{"status": ..., "notify": true, "message"?: ...}`` also tells subscribers."""
    token = await require_token(request)
    rt = runtime(request)
    component_id = request.path_params["component_id"]
    data = validate(ComponentPatch, await read_json(request))
    announce = data.notify and data.status is not None
    async with rt.engine.begin() as conn:
        fields = data.model_copy(update={"status": None}) if announce else data
        row = await component_store.patch_component(conn, component_id, fields)
    body = component_json(row)
    if announce and data.status is not None:
        _, posted = await component_changes.change_status(
            rt, component_id, data.status.value, notify=True, note=data.message or "", author=token["name"])
        async with rt.engine.connect() as conn:
            body = component_json(await component_store.get_component(conn, component_id))
        if posted is not None:
            body.update(incident_id=posted.incident_id, update_id=posted.update_id)
    else:
        await rt.bus.publish("components", {"component_id": component_id})
    return JSONResponse(body)


async def list_incidents(request: Request) -> Response:
    await require_token(request)
    rt = runtime(request)
    limit = query_int(request, "limit", 50, 1, 200)
    offset = query_int(request, "offset", 0, 0, 1_000_000)
    async with rt.engine.connect() as conn:
        rows = await incident_store.list_incidents(conn, limit=limit, offset=offset, include_drills=True)
    return JSONResponse([await incident_json(rt, r["id"]) for r in rows])


async def get_incident(request: Request) -> Response:
    await require_token(request)
    return JSONResponse(await incident_json(runtime(request), request.path_params["incident_id"]))


async def create_incident(request: Request) -> Response:
    token = await require_token(request)
    rt = runtime(request)
    raw = await read_json(request)
    data = validate(IncidentIn, raw)

    async def write(conn: AsyncConnection) -> Posted:
        return await incident_store.create_incident(conn, data, list(rt.registry.enabled), author=token["name"])

    async def rebuild(incident_id: str, update_id: str) -> dict[str, Any]:
        body = await incident_json(rt, incident_id)
        body["update"] = next(u for u in body["updates"] if u["id"] == update_id)
        return body

    async def answer(posted: Posted, first: bool) -> tuple[Any, dict[str, str]]:
        queued = await dispatch(rt, posted)
        return await rebuild(posted.incident_id, posted.update_id), {} if queued else {"X-Broadcaster-Queued": "later"}

    return await idempotent_post(request, token, raw, write, answer, rebuild)


async def create_update(request: Request) -> Response:
    token = await require_token(request)
    rt = runtime(request)
    raw = await read_json(request)
    data = validate(UpdateIn, raw)

    async def write(conn: AsyncConnection) -> Posted:
        return await incident_store.add_update(conn, request.path_params["incident_id"], data,
                                               list(rt.registry.enabled), author=token["name"])

    async def rebuild(incident_id: str, update_id: str) -> dict[str, Any]:
        incident = await incident_json(rt, incident_id)
        return next(u for u in incident["updates"] if u["id"] == update_id)

    async def answer(posted: Posted, first: bool) -> tuple[Any, dict[str, str]]:
        queued = await dispatch(rt, posted)
        return await rebuild(posted.incident_id, posted.update_id), {} if queued else {"X-Broadcaster-Queued": "later"}

    return await idempotent_post(request, token, raw, write, answer, rebuild)


async def preview_update(request: Request) -> Response:
    await require_token(request)
    rt = runtime(request)
    data = validate(PreviewIn, await read_json(request))
    async with rt.engine.connect() as conn:
        renditions = await preview(conn, data, rt.settings, rt.registry)
    return JSONResponse(renditions)


async def update_deliveries(request: Request) -> Response:
    await require_token(request)
    async with runtime(request).engine.connect() as conn:
        await incident_store.get_update_row(conn, request.path_params["update_id"])
        counts = await ledger.delivery_counts(conn, request.path_params["update_id"])
    return JSONResponse(counts)


async def update_failures(request: Request) -> Response:
    await require_token(request)
    async with runtime(request).engine.connect() as conn:
        await incident_store.get_update_row(conn, request.path_params["update_id"])
        rows = await ledger.failures(conn, request.path_params["update_id"])
    return JSONResponse([{**r, "updated_at": iso(r["updated_at"])} for r in rows])


async def list_channels(request: Request) -> Response:
    await require_token(request)
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        shown = await ledger.current_updates(conn)
    body = {}
    for name, cls in rt.registry.classes.items():
        current = shown.get(name)
        body[name] = {
            "title": cls.title, "kind": cls.kind.value, "enabled": name in rt.registry.enabled,
            "current_update": None if current is None else {
                "update_id": current["update_id"], "incident_id": current["incident_id"],
                "number": current["number"], "sent_at": iso(current["sent_at"]),
            },
        }
    return JSONResponse(body)


def subscriber_json(row: dict[str, Any], with_secret: bool = False) -> dict[str, Any]:
    body = {
        "id": row["id"], "channel": row["channel"], "address": row["address"], "components": row["components"],
        "confirmed": bool(row["confirmed"]), "created_at": iso(row["created_at"]),
        "confirmed_at": iso(row["confirmed_at"]), "unsubscribed_at": iso(row["unsubscribed_at"]),
        "suppressed_reason": row["suppressed_reason"],
    }
    if with_secret and row.get("secret"):
        body["secret"] = row["secret"]
    return body


async def list_subscribers(request: Request) -> Response:
    await require_token(request)
    channel = request.query_params.get("channel")
    limit = query_int(request, "limit", 100, 1, 1000)
    offset = query_int(request, "offset", 0, 0, 10_000_000)
    async with runtime(request).engine.connect() as conn:
        rows, total = await subscriber_store.list_subscribers(conn, channel=channel, limit=limit, offset=offset)
    return JSONResponse({"subscribers": [subscriber_json(r) for r in rows], "total": total})


async def create_subscriber(request: Request) -> Response:
    await require_token(request)
    rt = runtime(request)
    data = validate(SubscriberIn, await read_json(request))
    async with rt.engine.begin() as conn:
        row, created = await subscriber_store.upsert_subscriber(
            conn, data, allow_private_webhooks=rt.settings.webhook_allow_private
        )
    return JSONResponse(subscriber_json(row, with_secret=created), status_code=201 if created else 200)


async def delete_subscriber(request: Request) -> Response:
    await require_token(request)
    async with runtime(request).engine.begin() as conn:
        await subscriber_store.delete_subscriber(conn, request.path_params["subscriber_id"])
    return Response(status_code=204)


routes = [
    Route("/api/v1/components", list_components, methods=["GET"]),
    Route("/api/v1/components", create_component, methods=["POST"]),
    Route("/api/v1/components/{component_id}", patch_component, methods=["PATCH"]),
    Route("/api/v1/incidents", list_incidents, methods=["GET"]),
    Route("/api/v1/incidents", create_incident, methods=["POST"]),
    Route("/api/v1/incidents/{incident_id}", get_incident, methods=["GET"]),
    Route("/api/v1/incidents/{incident_id}/updates", create_update, methods=["POST"]),
    Route("/api/v1/preview", preview_update, methods=["POST"]),
    Route("/api/v1/updates/{update_id}/deliveries", update_deliveries, methods=["GET"]),
    Route("/api/v1/updates/{update_id}/failures", update_failures, methods=["GET"]),
    Route("/api/v1/channels", list_channels, methods=["GET"]),
    Route("/api/v1/subscribers", list_subscribers, methods=["GET"]),
    Route("/api/v1/subscribers", create_subscriber, methods=["POST"]),
    Route("/api/v1/subscribers/{subscriber_id}", delete_subscriber, methods=["DELETE"]),
]
