"""Preview: every enabled channel's exact rendition of an update that is not sent yet."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.components import components_by_id, display_name, require_components
from broadcaster.config import Settings
from broadcaster.db import updates, utcnow
from broadcaster.errors import InputError
from broadcaster.incidents import choose_channels, components_as_of, derived_impact, get_incident_row
from broadcaster.message import ComponentChange, Message
from broadcaster.registry import Registry
from broadcaster.render import make_message
from broadcaster.schemas import PreviewIn, check_status

PREVIEW_ID = "preview"


async def preview_message(conn: AsyncConnection, data: PreviewIn, settings: Settings) -> Message:
    """The ``Message`` this input would produce, built exactly as a posted one is."""
    now = utcnow()
    found = await require_components(conn, data.components)
    groups = await components_by_id(conn, [c["group_id"] for c in found.values() if c["group_id"]])
    if data.incident_id:
        incident = await get_incident_row(conn, data.incident_id)
        number = int(
            (await conn.execute(select(func.max(updates.c.number)).where(updates.c.incident_id == incident["id"])))
            .scalar() or 0
        ) + 1
        earlier = {c.id: c for c in await components_as_of(conn, incident["id"], number - 1)}
    else:
        if not data.title:
            raise InputError("a new incident needs a title", {"title": "required without incident_id"})
        incident = {
            "id": PREVIEW_ID, "name": data.title, "kind": "incident", "drill": False,
            "impact": data.impact.value if data.impact else derived_impact([s.value for s in data.components.values()]),
            "scheduled_for": None, "scheduled_until": None,
        }
        number, earlier = 1, {}
    check_status(incident["kind"], data.status)
    for component_id, status in data.components.items():
        row = found[component_id]
        earlier[component_id] = ComponentChange(
            id=component_id, name=display_name(row, groups), new_status=status.value, old_status=row["status"]
        )
    update = {
        "id": PREVIEW_ID, "status": data.status, "body": data.message, "created_at": now, "number": number,
        "next_update_at": now + timedelta(minutes=data.next_update_in_minutes) if data.next_update_in_minutes else None,
        "agent": data.agent.model_dump() if data.agent else {},
    }
    return make_message(incident=incident, update=update, components=list(earlier.values()),
                        page_name=settings.page_name, public_url=settings.public_url)


async def preview(conn: AsyncConnection, data: PreviewIn, settings: Settings, registry: Registry) -> dict[str, Any]:
    """{channel: rendition} for every channel the update would go to."""
    message = await preview_message(conn, data, settings)
    names = choose_channels(data.channels, list(registry.enabled))
    return {name: registry.enabled[name].render(message) for name in names}
