"""API tokens over the admin API: list them (never the secret) and revoke one.

- ``GET /api/v1/tokens`` (admin): name, role, created, last used, expires, revoked.
- ``DELETE /api/v1/tokens/{token_id}`` (admin): revoked at once; its next request gets 401.

Tokens are created with ``broadcaster create-token`` (the secret is printed once, there).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from broadcaster.domain import audit, tokens
from broadcaster.models import Role
from broadcaster.render import iso
from status_page.http import require_token, runtime, token_actor


def token_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "role": row["role"],
        "created_at": iso(row["created_at"]),
        "last_used_at": iso(row["last_used_at"]),
        "expires_at": iso(row["expires_at"]),
        "revoked_at": iso(row["revoked_at"]),
    }


async def list_tokens(request: Request) -> Response:
    await require_token(request, Role.ADMIN)
    async with runtime(request).engine.connect() as conn:
        rows = await tokens.list_tokens(conn)
    return JSONResponse([token_json(r) for r in rows])


async def revoke_token(request: Request) -> Response:
    caller = await require_token(request, Role.ADMIN)
    token_id = request.path_params["token_id"]
    async with runtime(request).engine.begin() as conn:
        await tokens.revoke_token(conn, token_id=token_id)
        await audit.record(conn, str(token_actor(caller)), "token.revoke", target=token_id)
    return Response(status_code=204)


routes: list[BaseRoute] = [
    Route("/api/v1/tokens", list_tokens, methods=["GET"]),
    Route("/api/v1/tokens/{token_id}", revoke_token, methods=["DELETE"]),
]
