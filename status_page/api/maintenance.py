"""``PATCH /api/v1/incidents/{incident_id}``: edit a maintenance's window, components and automation.

The edit is a ``MaintenanceEdit`` posted through the one posting service: a new window or new
components go out as an update ("rescheduled to …") to every enabled channel and bump the
calendar's SEQUENCE; ``auto_transition``, the automatic messages, ``rrule`` and
``remind_before_minutes`` change quietly. Sending the same body again changes nothing and
posts nothing. Bad input is a 4xx naming the field (``rrule`` for a rule that does not parse).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster import posting
from broadcaster.models import Role
from broadcaster.post_requests import MaintenanceEdit
from broadcaster.schemas import MaintenancePatch, validate
from status_page.api.v1 import incident_json
from status_page.http import read_json, require_token, runtime, token_actor


async def patch_maintenance(request: Request) -> Response:
    """200 with the maintenance as ``GET`` shows it, and ``update``: the update the edit posted, or null."""
    token = await require_token(request, Role.COMMANDER)
    rt = runtime(request)
    incident_id = request.path_params["incident_id"]
    data = validate(MaintenancePatch, await read_json(request))
    result = await posting.post(rt, MaintenanceEdit(incident_id, data), actor=token_actor(token))
    body = await incident_json(rt, incident_id)
    posted = result.posted
    body["update"] = next((u for u in body["updates"] if posted and u["id"] == posted.update_id), None)
    return JSONResponse(body)


routes = [Route("/api/v1/incidents/{incident_id}", patch_maintenance, methods=["PATCH"])]
