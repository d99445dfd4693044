"""Refuse a NUL (``\\x00``) in the URL before any route looks it up.

PostgreSQL cannot hold NUL in text, so ``/api/v1/incidents/%00`` or ``?channel=%00`` would
fail inside the query (a 500) where SQLite simply finds nothing. Path and query parameters
reach lookups from many routes; this middleware answers all of them, naming the parameter,
with the statuses the API already documents for them: a path parameter holding a NUL names
nothing (404), a query parameter holding one is a bad query parameter (400). Bodies are
checked where they are parsed (``status_page.http.read_json`` and the ``Strict`` input
models: 422).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from broadcaster.schemas import NUL_REASON as REASON
from status_page.http import error_response


class NulGuardMiddleware:
    """Pure ASGI middleware: 404 or 400 naming the path or query parameter that holds a NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if "\x00" in scope.get("path", ""):
                fields = {name: REASON for name in _path_params_with_nul(scope)} or {"path": REASON}
                await error_response(404, "not_found", "nothing is named with a NUL character", fields)(
                    scope, receive, send
                )
                return
            fields = query_fields_with_nul(scope.get("query_string", b""))
            if fields:
                await error_response(400, "bad_request", "a query parameter must not contain a NUL character", fields)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def query_fields_with_nul(query: bytes) -> dict[str, str]:
    """The query parameters holding a NUL, each with the reason; empty when there is none."""
    fields: dict[str, str] = {}
    if b"\x00" in query or b"%00" in query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in key:
                fields["query"] = "a parameter name must not contain a NUL character"
            elif "\x00" in value:
                fields[key] = REASON
    return fields


def _path_params_with_nul(scope: Scope) -> list[str]:
    for route in getattr(scope.get("app"), "routes", []):
        match, child = route.matches(scope)
        if match is Match.FULL:
            return [name for name, value in child.get("path_params", {}).items() if "\x00" in str(value)]
    return []
