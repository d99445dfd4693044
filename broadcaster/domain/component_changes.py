"""A component's status changed without an incident: what that change posts, if anything.

With ``notify`` the change goes out as a short update of its own: a new incident named after
the component, or, when the component comes back to operational, the resolution of the open
incident that affects it alone. ``broadcaster.posting`` asks ``plan`` and records the result
(the console's component form and ``PATCH /api/v1/components/{id}`` both post a
``ComponentNotice``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.domain import components as component_store
from broadcaster.domain import incidents as incident_store
from broadcaster.domain import maintenance
from broadcaster.errors import InputError
from broadcaster.models import CLOSED_STATUSES, ComponentStatus, IncidentStatus, humanize
from broadcaster.post_requests import ComponentNotice, FollowUp, NewIncident
from broadcaster.schemas import ComponentPatch, IncidentIn, UpdateIn


async def open_incident_of(conn: AsyncConnection, component_id: str) -> str | None:
    """The open incident that affects this component alone (what a notified change opened)."""
    open_statuses = [s.value for s in IncidentStatus if s.value not in CLOSED_STATUSES]
    for incident in await incident_store.list_incidents(
        conn, kind="incident", limit=50, include_drills=True, statuses=open_statuses
    ):
        if await incident_store.incident_component_ids(conn, incident["id"]) == [component_id]:
            return str(incident["id"])
    return None


async def plan(conn: AsyncConnection, notice: ComponentNotice) -> tuple[dict[str, Any], NewIncident | FollowUp | None]:
    """(the component before the change, the update to post or None for a quiet change).

    A quiet change (no ``notify``, or the component is in a maintenance under way) is applied
    here, in the caller's transaction.
    """
    component = await component_store.get_component(conn, notice.component_id)
    if component["is_group"]:
        raise InputError("a group has no status of its own", {"status": "set its components instead"})
    status = notice.status.value
    # In a maintenance under way, a component's own changes tell no one (the maintenance's updates do).
    if not notice.notify or await maintenance.under_way(conn, notice.component_id):
        await component_store.patch_component(conn, notice.component_id, ComponentPatch(status=notice.status))
        return component, None
    name = component["name"]
    components = {notice.component_id: notice.status}
    linked = await open_incident_of(conn, notice.component_id)
    if status == ComponentStatus.OPERATIONAL.value and linked:
        update = UpdateIn(
            status="resolved",
            message=notice.note or f"{name} is operating normally again.",
            components=components,
            deliver_notifications=notice.deliver_notifications,
        )
        return component, FollowUp(linked, update)
    incident = IncidentIn(
        title=f"{name} {humanize(status).lower()}",
        status="resolved" if status == ComponentStatus.OPERATIONAL.value else "identified",
        message=notice.note or f"{name}: {humanize(status).lower()}.",
        components=components,
        deliver_notifications=notice.deliver_notifications,
    )
    return component, NewIncident(incident)
