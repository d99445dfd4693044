"""The admin REST API (``/api/v1``): components, incidents, updates, preview, ledger, subscribers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster import posting
from broadcaster.delivery import ledger
from broadcaster.domain import audit, idempotency, maintenance
from broadcaster.domain import components as component_store
from broadcaster.domain import incidents as incident_store
from broadcaster.domain import subscribers as subscriber_store
from broadcaster.errors import InputError
from broadcaster.jobs import page_copies
from broadcaster.models import Role
from broadcaster.post_requests import ComponentNotice, PostRequest, request_from_body
from broadcaster.render import iso, markdown_to_html
from broadcaster.runtime import Runtime
from broadcaster.schemas import ComponentIn, ComponentPatch, SubscriberIn, validate
from status_page.http import query_int, read_json, require_token, runtime, token_actor

log = logging.getLogger(__name__)


def component_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "status": row["status"],
        "group": bool(row["is_group"]),
        "group_id": row["group_id"],
        "position": row["position"],
        "showcase": bool(row["showcase"]),
        "only_show_if_degraded": bool(row["only_show_if_degraded"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def update_json(row: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "incident_id": row["incident_id"],
        "number": row["number"],
        "status": row["status"],
        "body": row["body"],
        "body_html": markdown_to_html(row["body"]),
        "created_at": iso(row["created_at"]),
        "next_update_at": iso(row["next_update_at"]),
        "channels": row["channels"],
        "agent": row["agent"],
        "translations": row.get("translations") or {},
        "author": row["author"],
        "affected_components": [
            {
                "code": c["component_id"],
                "name": c["display_name"],
                "old_status": c["old_status"],
                "new_status": c["new_status"],
            }
            for c in changes
        ],
    }


async def incident_json(rt: Runtime, incident_id: str) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        incident = await incident_store.get_incident_row(conn, incident_id)
        update_rows = (await incident_store.list_updates(conn, [incident_id]))[incident_id]
        changes = await incident_store.update_changes(conn, [u["id"] for u in update_rows])
        component_ids = await incident_store.incident_component_ids(conn, incident_id)
    return {
        "id": incident["id"],
        "kind": incident["kind"],
        "name": incident["name"],
        "status": incident["status"],
        "impact": incident["impact"],
        "drill": bool(incident["drill"]),
        "created_at": iso(incident["created_at"]),
        "updated_at": iso(incident["updated_at"]),
        "started_at": iso(incident["started_at"]),
        "monitoring_at": iso(incident["monitoring_at"]),
        "resolved_at": iso(incident["resolved_at"]),
        "scheduled_for": iso(incident["scheduled_for"]),
        "scheduled_until": iso(incident["scheduled_until"]),
        "next_update_at": iso(incident["next_update_at"]),
        "components": component_ids,
        **maintenance.api_fields(incident),
        "url": f"{rt.settings.public_url}/incidents/{incident['id']}",
        "updates": [update_json(u, changes[u["id"]]) for u in update_rows],
    }


async def list_components(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        rows = await component_store.list_components(conn)
    return JSONResponse([component_json(r) for r in rows])


async def create_component(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    data = validate(ComponentIn, await read_json(request))
    async with runtime(request).engine.begin() as conn:
        row = await component_store.create_component(conn, data)
        await audit.record(conn, str(token_actor(token)), "component.create", target=row["id"], name=row["name"])
    await page_copies.page_changed(runtime(request), "components", {"component_id": row["id"]})
    return JSONResponse(component_json(row), status_code=201)


async def patch_component(request: Request) -> Response:
    """Edit a component; a new ``status`` is posted as a ``ComponentNotice`` (``notify`` tells subscribers)."""
    token = await require_token(request, Role.COMMANDER)
    rt = runtime(request)
    component_id = request.path_params["component_id"]
    data = validate(ComponentPatch, await read_json(request))
    actor = token_actor(token)
    fields = data.model_copy(update={"status": None, "notify": False, "message": None})
    edits = fields.model_dump(exclude_unset=True, exclude={"status", "notify", "message", "deliver_notifications"})
    async with rt.engine.begin() as conn:
        await component_store.get_component(conn, component_id)
        if edits:
            await component_store.patch_component(conn, component_id, fields)
            await audit.record(conn, str(actor), "component.update", target=component_id, **edits)
    posted = None
    if data.status is not None:
        notice = ComponentNotice(
            component_id,
            data.status,
            notify=data.notify,
            note=data.message or "",
            deliver_notifications=data.deliver_notifications,
        )
        posted = (await posting.post(rt, notice, actor=actor)).posted
    elif edits:
        await page_copies.page_changed(rt, "components", {"component_id": component_id})
    async with rt.engine.connect() as conn:
        body = component_json(await component_store.get_component(conn, component_id))
    if posted is not None:
        body.update(incident_id=posted.incident_id, update_id=posted.update_id)
    return JSONResponse(body)


async def list_incidents(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    rt = runtime(request)
    limit = query_int(request, "limit", 50, 1, 200)
    offset = query_int(request, "offset", 0, 0, 1_000_000)
    async with rt.engine.connect() as conn:
        rows = await incident_store.list_incidents(conn, limit=limit, offset=offset, include_drills=True)
    return JSONResponse([await incident_json(rt, r["id"]) for r in rows])


async def get_incident(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    return JSONResponse(await incident_json(runtime(request), request.path_params["incident_id"]))


async def _post(
    request: Request, token: dict[str, Any], post_request: PostRequest, answer: Callable[[str, str], Awaitable[Any]]
) -> Response:
    """Post through the one service; a retried ``Idempotency-Key`` replays the first answer verbatim."""
    rt = runtime(request)
    key = idempotency.check_key(request.headers.get(idempotency.HEADER))
    actor = token_actor(token)
    result = await posting.post(rt, post_request, actor=actor, idempotency_key=key)
    ref = result.ref
    assert ref is not None  # incidents and updates always record one
    if result.replayed is not None:
        body = result.replayed.body
        if body is None:  # a crash between commit and answer: rebuild it
            body = await answer(ref["incident_id"], ref["update_id"])
        return JSONResponse(body, status_code=result.replayed.status_code, headers={"Idempotent-Replayed": "true"})
    body = await answer(ref["incident_id"], ref["update_id"])
    if key is not None:
        await idempotency.remember_answer(rt.engine, key, actor.scope, 201, body)
    return JSONResponse(body, status_code=201, headers={} if result.queued else {"X-Broadcaster-Queued": "later"})


async def create_incident(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    rt = runtime(request)
    post_request = request_from_body(await read_json(request))

    async def answer(incident_id: str, update_id: str) -> dict[str, Any]:
        body = await incident_json(rt, incident_id)
        body["update"] = next(u for u in body["updates"] if u["id"] == update_id)
        return body

    return await _post(request, token, post_request, answer)


async def create_update(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    rt = runtime(request)
    post_request = request_from_body(await read_json(request), request.path_params["incident_id"])

    async def answer(incident_id: str, update_id: str) -> dict[str, Any]:
        incident = await incident_json(rt, incident_id)
        return next(u for u in incident["updates"] if u["id"] == update_id)

    return await _post(request, token, post_request, answer)


async def preview_update(request: Request) -> Response:
    """``POST /api/v1/preview``: the body of an update (with ``incident_id``) or of a new incident."""
    token = await require_token(request, Role.COMMANDER)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object", {"body": "expected an object"})
    body = dict(body)
    incident_id = body.pop("incident_id", None)
    if incident_id is not None and not isinstance(incident_id, str):
        raise InputError("invalid input", {"incident_id": "must be a string"})
    renditions = await posting.preview(runtime(request), request_from_body(body, incident_id), actor=token_actor(token))
    return JSONResponse(renditions)


async def update_deliveries(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        await incident_store.get_update_row(conn, request.path_params["update_id"])
        counts = await ledger.delivery_counts(conn, request.path_params["update_id"])
    return JSONResponse(counts)


async def update_failures(request: Request) -> Response:
    await require_token(request, Role.COMMANDER)
    async with runtime(request).engine.connect() as conn:
        await incident_store.get_update_row(conn, request.path_params["update_id"])
        rows = await ledger.failures(conn, request.path_params["update_id"])
    return JSONResponse([{**r, "updated_at": iso(r["updated_at"])} for r in rows])


async def list_channels(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        shown = await ledger.current_updates(conn)
    body = {}
    for name, cls in rt.registry.classes.items():
        current = shown.get(name)
        body[name] = {
            "title": cls.title,
            "kind": cls.kind.value,
            "enabled": name in rt.registry.enabled,
            "current_update": None
            if current is None
            else {
                "update_id": current["update_id"],
                "incident_id": current["incident_id"],
                "number": current["number"],
                "sent_at": iso(current["sent_at"]),
            },
        }
    for name, copy in page_copies.page_copies(rt).items():  # the mirror: its last successful push and lag
        body[name]["copy"] = dict(await copy.copy_state())
    return JSONResponse(body)


def subscriber_json(row: dict[str, Any], with_secret: bool = False) -> dict[str, Any]:
    body = {
        "id": row["id"],
        "channel": row["channel"],
        "address": row["address"],
        "components": row["components"],
        "language": row.get("language"),
        "confirmed": bool(row["confirmed"]),
        "created_at": iso(row["created_at"]),
        "confirmed_at": iso(row["confirmed_at"]),
        "unsubscribed_at": iso(row["unsubscribed_at"]),
        "suppressed_reason": row["suppressed_reason"],
    }
    if with_secret and row.get("secret"):
        body["secret"] = row["secret"]
    return body


async def list_subscribers(request: Request) -> Response:
    await require_token(request, Role.ADMIN)
    channel = request.query_params.get("channel")
    limit = query_int(request, "limit", 100, 1, 1000)
    offset = query_int(request, "offset", 0, 0, 10_000_000)
    async with runtime(request).engine.connect() as conn:
        rows, total = await subscriber_store.list_subscribers(conn, channel=channel, limit=limit, offset=offset)
    return JSONResponse({"subscribers": [subscriber_json(r) for r in rows], "total": total})


async def create_subscriber(request: Request) -> Response:
    token = await require_token(request, Role.ADMIN)
    rt = runtime(request)
    data = validate(SubscriberIn, await read_json(request))
    async with rt.engine.begin() as conn:
        row, created = await subscriber_store.upsert_subscriber(
            conn, data, allow_private_webhooks=rt.settings.webhook_allow_private, languages=rt.settings.languages
        )
        await audit.record(
            conn,
            str(token_actor(token)),
            "subscriber.create" if created else "subscriber.update",
            target=row["id"],
            channel=row["channel"],
            confirmed=bool(row["confirmed"]),
        )
    return JSONResponse(subscriber_json(row, with_secret=created), status_code=201 if created else 200)


async def delete_subscriber(request: Request) -> Response:
    token = await require_token(request, Role.ADMIN)
    async with runtime(request).engine.begin() as conn:
        await subscriber_store.delete_subscriber(conn, request.path_params["subscriber_id"])
        await audit.record(
            conn, str(token_actor(token)), "subscriber.delete", target=request.path_params["subscriber_id"]
        )
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
