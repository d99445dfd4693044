"""The sign-up pages' request plumbing: JSON or form bodies, who asks, the components to offer."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from broadcaster.domain.components import list_components
from broadcaster.errors import InputError
from broadcaster.runtime import Runtime
from broadcaster.schemas import NUL_REASON
from status_page.http import read_body, read_json, runtime


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def read_input(request: Request) -> dict[str, Any]:
    """The body as a dict: JSON object, or form fields (``components`` as a list)."""
    if is_json(request):
        data: dict[str, Any] = await read_json(request)
        return data
    raw = await read_body(request, runtime(request).settings.max_body_bytes)  # refuses oversized bodies

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=0, max_fields=600)
    for key, value in form.multi_items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise InputError("invalid input", {key.replace("\x00", "") or "body": NUL_REASON})
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "components"}
    values["components"] = [v for k in ("components", "components[]") for v in form.getlist(k) if isinstance(v, str)]
    return values


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def component_choices(rt: Runtime) -> list[dict[str, str]]:
    async with rt.engine.connect() as conn:
        rows = await list_components(conn)
    groups = {r["id"]: r for r in rows if r["is_group"]}
    choices = []
    for row in rows:
        if row["is_group"]:
            continue
        group = groups.get(row.get("group_id") or "")
        name = f"{group['name']} - {row['name']}" if group else row["name"]
        choices.append({"id": row["id"], "name": name})
    return choices
