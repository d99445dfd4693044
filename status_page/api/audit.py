"""``GET /api/v1/audit?limit=&before=``: the audit log, newest first, for admin tokens only.

Paging is by entry id: the answer's ``next_before`` goes into the next request's ``before``
(``null`` on the last page), so entries written meanwhile never shift a page.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from broadcaster.domain import audit
from broadcaster.models import Role
from broadcaster.render import iso
from status_page.http import HTTPError, require_token, runtime

DEFAULT_LIMIT = 50


def int_param(request: Request, name: str, minimum: int, maximum: int) -> int | None:
    """A strict integer query parameter (None when absent): 400 when not an integer, 422 when out of range."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, "bad_request", f"{name} must be an integer", {name: "must be an integer"}) from None
    if not minimum <= value <= maximum:
        raise HTTPError(
            422,
            "invalid_input",
            f"{name} must be within {minimum}..{maximum}",
            {name: f"must be within {minimum}..{maximum}"},
        )
    return value


def entry_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "actor": row["actor"],
        "action": row["action"],
        "target": row["target"],
        "details": row["details"] or {},
        "at": iso(row["at"]),
    }


async def list_audit(request: Request) -> Response:
    await require_token(request, Role.ADMIN)
    limit = int_param(request, "limit", 1, audit.MAX_LIMIT)
    before = int_param(request, "before", 1, audit.MAX_ID)
    async with runtime(request).engine.connect() as conn:
        page = await audit.recent(conn, DEFAULT_LIMIT if limit is None else limit, before)
    return JSONResponse({"entries": [entry_json(r) for r in page.entries], "next_before": page.next_before})


routes: list[BaseRoute] = [Route("/api/v1/audit", list_audit, methods=["GET"])]
