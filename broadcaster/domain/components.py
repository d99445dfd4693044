"""Components: the parts of the service the page lists, with their status history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import components, new_id, status_changes, utcnow
from broadcaster.errors import InputError, NotFound
from broadcaster.schemas import ComponentIn, ComponentPatch

Row = dict[str, Any]


async def list_components(conn: AsyncConnection) -> list[Row]:
    """Every component and group, in page order."""
    result = await conn.execute(select(components).order_by(components.c.position, components.c.name))
    return [dict(row) for row in result.mappings()]


async def get_component(conn: AsyncConnection, component_id: str) -> Row:
    row = (await conn.execute(select(components).where(components.c.id == component_id))).mappings().first()
    if row is None:
        raise NotFound("no such component", {"id": f"unknown component {component_id!r}"})
    return dict(row)


async def components_by_id(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, Row]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    result = await conn.execute(select(components).where(components.c.id.in_(wanted)))
    return {row["id"]: dict(row) for row in result.mappings()}


async def require_components(conn: AsyncConnection, ids: Iterable[str], field: str = "components") -> dict[str, Row]:
    """The rows for ``ids``; an ``InputError`` naming each unknown id (groups are not allowed)."""
    ids = list(ids)
    found = await components_by_id(conn, ids)
    bad = {f"{field}.{cid}": "unknown component" for cid in ids if cid not in found or found[cid]["is_group"]}
    if bad:
        raise InputError("unknown component ids", bad)
    return found


async def _next_position(conn: AsyncConnection) -> int:
    value = (await conn.execute(select(func.max(components.c.position)))).scalar()
    return int(value or 0) + 1


async def _group_id(conn: AsyncConnection, data: ComponentIn) -> str | None:
    if data.group_id:
        group = await get_component(conn, data.group_id)
        if not group["is_group"]:
            raise InputError("not a group", {"group_id": "names a component that is not a group"})
        return data.group_id
    if not data.group:
        return None
    existing = (
        await conn.execute(
            select(components.c.id).where(components.c.name == data.group, components.c.is_group.is_(True))
        )
    ).scalar()
    if existing:
        return str(existing)
    now = utcnow()
    group_id = new_id()
    await conn.execute(
        components.insert().values(
            id=group_id,
            name=data.group,
            is_group=True,
            position=await _next_position(conn),
            status="operational",
            created_at=now,
            updated_at=now,
        )
    )
    return group_id


async def create_component(conn: AsyncConnection, data: ComponentIn) -> Row:
    now = utcnow()
    component_id = new_id()
    group_id = await _group_id(conn, data)
    await conn.execute(
        components.insert().values(
            id=component_id,
            name=data.name,
            description=data.description,
            group_id=group_id,
            is_group=False,
            position=data.position if data.position is not None else await _next_position(conn),
            status=data.status.value,
            showcase=data.showcase,
            only_show_if_degraded=data.only_show_if_degraded,
            start_date=now.date().isoformat(),
            created_at=now,
            updated_at=now,
        )
    )
    await conn.execute(
        status_changes.insert().values(
            component_id=component_id, old_status=None, new_status=data.status.value, created_at=now
        )
    )
    return await get_component(conn, component_id)


async def set_status(
    conn: AsyncConnection, component: Row, new_status: str, update_id: str | None = None
) -> tuple[str, str]:
    """Change one component's status and record it in the history; returns (old, new)."""
    old_status = component["status"]
    now = utcnow()
    await conn.execute(
        components.update().where(components.c.id == component["id"]).values(status=new_status, updated_at=now)
    )
    await conn.execute(
        status_changes.insert().values(
            component_id=component["id"],
            update_id=update_id,
            old_status=old_status,
            new_status=new_status,
            created_at=now,
        )
    )
    return old_status, new_status


async def patch_component(conn: AsyncConnection, component_id: str, patch: ComponentPatch) -> Row:
    component = await get_component(conn, component_id)
    values = patch.model_dump(exclude_unset=True, exclude={"status", "notify", "message"})
    if "group_id" in values and values["group_id"] is not None:
        group = await get_component(conn, values["group_id"])
        if not group["is_group"] or group["id"] == component_id:
            raise InputError("not a group", {"group_id": "must name a group"})
    if values:
        values["updated_at"] = utcnow()
        await conn.execute(components.update().where(components.c.id == component_id).values(**values))
    if patch.status is not None and patch.status.value != component["status"]:
        if component["is_group"]:
            raise InputError("a group has no status of its own", {"status": "set its components instead"})
        await set_status(conn, component, patch.status.value)
    return await get_component(conn, component_id)


def display_name(component: Row, groups: dict[str, Row]) -> str:
    """Statuspage's name for an affected component: "Group - Component" when grouped."""
    group = groups.get(component.get("group_id") or "")
    return f"{group['name']} - {component['name']}" if group else str(component["name"])
