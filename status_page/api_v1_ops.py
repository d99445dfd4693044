"""Operations endpoints of the admin API: dead letters and their replay, and idempotent posts.

- ``GET /api/v1/deadletter?update_id=&channel=&limit=&offset=``: permanently failed rows.
- ``POST /api/v1/updates/{update_id}/deliveries/retry`` {channel, delivery_ids?}: put them back in line.
- ``idempotent_post``: how ``POST /api/v1/incidents`` and ``/updates`` honour ``Idempotency-Key``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster import audit, deadletter, idempotency
from broadcaster import incidents as incident_store
from broadcaster.incidents import Posted
from broadcaster.render import iso
from broadcaster.schemas import Strict, validate
from status_page.http import HTTPError, query_int, read_json, require_token, runtime

Write = Callable[[AsyncConnection], Awaitable[Posted]]
Answer = Callable[[Posted, bool], Awaitable[tuple[Any, dict[str, str]]]]


async def idempotent_post(request: Request, token: dict[str, Any], data: Any, write: Write,
                          answer: Answer, rebuild: Callable[[str, str], Awaitable[Any]]) -> Response:
    """Record once per ``Idempotency-Key`` and actor; a retry replays the first answer verbatim.

    ``answer(posted, first)`` enqueues (when ``first``) and returns (body, headers) for a new
    post; ``rebuild(incident_id, update_id)`` rebuilds a body that was never stored (a crash
    between commit and answer).
    """
    rt = runtime(request)
    key = idempotency.check_key(request.headers.get(idempotency.HEADER))
    if key is None:
        async with rt.engine.begin() as conn:
            posted = await write(conn)
        body, headers = await answer(posted, True)
        return JSONResponse(body, status_code=201, headers=headers)
    actor = f"token:{token['id']}"
    digest = idempotency.fingerprint(request.method, request.url.path, data)
    outcome = await idempotency.run_once(rt.engine, key, actor, digest, write)
    if isinstance(outcome, idempotency.Stored):
        body = outcome.body
        if body is None:
            body = await rebuild(outcome.ref["incident_id"], outcome.ref["update_id"])
        return JSONResponse(body, status_code=outcome.status_code, headers={"Idempotent-Replayed": "true"})
    body, headers = await answer(outcome, True)
    await idempotency.remember_answer(rt.engine, key, actor, 201, body)
    return JSONResponse(body, status_code=201, headers=headers)


async def list_deadletter(request: Request) -> Response:
    await require_token(request)
    limit = query_int(request, "limit", 100, 1, 1000)
    offset = query_int(request, "offset", 0, 0, 10_000_000)
    update_id = request.query_params.get("update_id") or None
    channel = request.query_params.get("channel") or None
    async with runtime(request).engine.connect() as conn:
        dead = await deadletter.list_dead(conn, update_id=update_id, channel=channel, limit=limit, offset=offset)
    return JSONResponse({
        "total": dead.total,
        "groups": dead.by_update_channel,
        "deliveries": [{**row, "updated_at": iso(row["updated_at"])} for row in dead.rows],
    })


class RetryIn(Strict):
    channel: str = Field(min_length=1, max_length=32)
    delivery_ids: list[int] | None = Field(default=None, max_length=10_000)


async def retry_deliveries(request: Request) -> Response:
    token = await require_token(request)
    rt = runtime(request)
    data = validate(RetryIn, await read_json(request))
    update_id = request.path_params["update_id"]
    async with rt.engine.connect() as conn:
        await incident_store.get_update_row(conn, update_id)
    if data.channel not in rt.registry.enabled:
        raise HTTPError(422, "invalid_input", "that channel is not enabled", {"channel": "not an enabled channel"})
    reset, batches = await deadletter.replay(rt.engine, rt.queue, update_id, data.channel, rt.settings.batch_size,
                                             data.delivery_ids)
    async with rt.engine.begin() as conn:
        await audit.record(conn, f"token:{token['name']}", "deliveries.retry", target=update_id,
                           channel=data.channel, reset=reset)
    return JSONResponse({"reset": reset, "batches": batches}, status_code=202)


routes = [
    Route("/api/v1/deadletter", list_deadletter, methods=["GET"]),
    Route("/api/v1/updates/{update_id}/deliveries/retry", retry_deliveries, methods=["POST"]),
]
