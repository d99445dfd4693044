"""Operations endpoints of the admin API: dead letters and their replay.

- ``GET /api/v1/deadletter?update_id=&channel=&limit=&offset=``: permanently failed rows.
- ``POST /api/v1/updates/{update_id}/deliveries/retry`` {channel, delivery_ids?}: put them back in line.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster.delivery import deadletter
from broadcaster.domain import audit
from broadcaster.domain import incidents as incident_store
from broadcaster.models import Role
from broadcaster.render import iso
from broadcaster.schemas import Strict, validate
from status_page.http import HTTPError, query_int, read_json, require_token, runtime, token_actor


async def list_deadletter(request: Request) -> Response:
    await require_token(request, Role.COMMANDER)
    limit = query_int(request, "limit", 100, 1, 1000)
    offset = query_int(request, "offset", 0, 0, 10_000_000)
    update_id = request.query_params.get("update_id") or None
    channel = request.query_params.get("channel") or None
    async with runtime(request).engine.connect() as conn:
        dead = await deadletter.list_dead(conn, update_id=update_id, channel=channel, limit=limit, offset=offset)
    return JSONResponse(
        {
            "total": dead.total,
            "groups": dead.by_update_channel,
            "deliveries": [{**row, "updated_at": iso(row["updated_at"])} for row in dead.rows],
        }
    )


class RetryIn(Strict):
    channel: str = Field(min_length=1, max_length=32)
    delivery_ids: list[int] | None = Field(default=None, max_length=10_000)


async def retry_deliveries(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    rt = runtime(request)
    data = validate(RetryIn, await read_json(request))
    update_id = request.path_params["update_id"]
    async with rt.engine.connect() as conn:
        await incident_store.get_update_row(conn, update_id)
    if data.channel not in rt.registry.enabled:
        raise HTTPError(422, "invalid_input", "that channel is not enabled", {"channel": "not an enabled channel"})
    reset, batches = await deadletter.replay(
        rt.engine, rt.queue, update_id, data.channel, rt.settings.batch_size, data.delivery_ids
    )
    async with rt.engine.begin() as conn:
        await audit.record(
            conn, str(token_actor(token)), "deliveries.retry", target=update_id, channel=data.channel, reset=reset
        )
    return JSONResponse({"reset": reset, "batches": batches}, status_code=202)


routes = [
    Route("/api/v1/deadletter", list_deadletter, methods=["GET"]),
    Route("/api/v1/updates/{update_id}/deliveries/retry", retry_deliveries, methods=["POST"]),
]
