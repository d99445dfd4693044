"""A component's status changed without an incident: record it, and optionally tell subscribers.

With ``notify`` the change goes out as a short update of its own: a new incident named after
the component, or, when the component comes back to operational, the resolution of the open
incident that affects it alone. Used by the console and by ``PATCH /api/v1/components/{id}``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster import components as component_store
from broadcaster import incidents as incident_store
from broadcaster.errors import InputError
from broadcaster.incidents import Posted
from broadcaster.models import CLOSED_STATUSES, ComponentStatus, IncidentStatus, humanize
from broadcaster.posting import post
from broadcaster.runtime import Runtime
from broadcaster.schemas import ComponentPatch


async def open_incident_of(conn: AsyncConnection, component_id: str) -> str | None:
    """The open incident that affects this component alone (what a notified change opened)."""
    open_statuses = [s.value for s in IncidentStatus if s.value not in CLOSED_STATUSES]
    for incident in await incident_store.list_incidents(conn, kind="incident", limit=50, include_drills=True,
                                                        statuses=open_statuses):
        if await incident_store.incident_component_ids(conn, incident["id"]) == [component_id]:
            return str(incident["id"])
    return None


async def change_status(
    rt: Runtime, component_id: str, status: str, *, notify: bool, note: str = "", author: str,
) -> tuple[dict[str, Any], Posted | None]:
    """Set the component's status; with ``notify`` post it as an update. Returns (old component, posted)."""
    if status not in {s.value for s in ComponentStatus}:
        raise InputError("invalid status", {"status": "must be a component status"})
    async with rt.engine.connect() as conn:
        component = await component_store.get_component(conn, component_id)
        linked = await open_incident_of(conn, component_id) if notify else None
    if component["is_group"]:
        raise InputError("a group has no status of its own", {"status": "set its components instead"})
    if not notify:
        async with rt.engine.begin() as conn:
            await component_store.patch_component(conn, component_id, ComponentPatch(status=ComponentStatus(status)))
        await rt.bus.publish("components", {"component_id": component_id})
        return component, None
    name = component["name"]
    if status == ComponentStatus.OPERATIONAL.value and linked:
        body = {"status": "resolved", "message": note or f"{name} is operating normally again.",
                "components": {component_id: status}}
        posted, _ = await post(rt, body, linked, author=author)
    else:
        body = {"title": f"{name} {humanize(status).lower()}",
                "status": "resolved" if status == ComponentStatus.OPERATIONAL.value else "identified",
                "message": note or f"{name}: {humanize(status).lower()}.", "components": {component_id: status}}
        posted, _ = await post(rt, body, None, author=author)
    return component, posted
