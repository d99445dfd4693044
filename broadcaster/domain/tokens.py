"""API tokens: printed once at creation, stored only as a hash."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import api_tokens, new_id, utcnow
from broadcaster.errors import InputError
from broadcaster.models import Role
from broadcaster.security import hash_token, new_api_token, tokens_equal


async def create_token(conn: AsyncConnection, name: str, role: str = Role.ADMIN.value) -> str:
    """Store a new token's hash and return the token itself (shown to the user once)."""
    if not name.strip():
        raise InputError("a token needs a name", {"name": "must not be empty"})
    if role not in {r.value for r in Role}:
        raise InputError("unknown role", {"role": f"must be one of {', '.join(r.value for r in Role)}"})
    token = new_api_token()
    await conn.execute(
        api_tokens.insert().values(
            id=new_id(), name=name.strip(), token_hash=hash_token(token), role=role, created_at=utcnow()
        )
    )
    return token


async def authenticate(conn: AsyncConnection, token: str) -> dict[str, Any] | None:
    """The token's row when ``token`` is valid and not revoked."""
    digest = hash_token(token)
    row = (
        (
            await conn.execute(
                select(api_tokens).where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None))
            )
        )
        .mappings()
        .first()
    )
    if row is None or not tokens_equal(row["token_hash"], digest):
        return None
    return dict(row)
