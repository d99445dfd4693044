"""API tokens: printed once at creation, stored only as a hash, with a role, an optional expiry, revocable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import api_tokens, new_id, utcnow
from broadcaster.errors import InputError, NotFound
from broadcaster.models import Role
from broadcaster.security import hash_token, new_api_token, tokens_equal

LAST_USED_RESOLUTION = timedelta(minutes=1)  # one write a minute at most, however busy the token
MAX_EXPIRY_DAYS = 3650


async def create_token(
    conn: AsyncConnection, name: str, role: str = Role.ADMIN.value, expires_in_days: int | None = None
) -> str:
    """Store a new token's hash and return the token itself (shown to the user once)."""
    if not name.strip() or len(name) > 255:
        raise InputError("a token needs a name", {"name": "1 to 255 characters"})
    if role not in {r.value for r in Role}:
        raise InputError("unknown role", {"role": f"must be one of {', '.join(r.value for r in Role)}"})
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise InputError("invalid expiry", {"expires_in_days": f"1 to {MAX_EXPIRY_DAYS} days"})
    token = new_api_token()
    now = utcnow()
    await conn.execute(
        api_tokens.insert().values(
            id=new_id(),
            name=name.strip(),
            token_hash=hash_token(token),
            role=role,
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
    )
    return token


async def authenticate(conn: AsyncConnection, token: str) -> dict[str, Any] | None:
    """The token's row when ``token`` is valid, not revoked and not expired; notes its use (coarsely)."""
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
    now = utcnow()
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_RESOLUTION:
        await conn.execute(api_tokens.update().where(api_tokens.c.id == row["id"]).values(last_used_at=now))
        await conn.commit()
    return dict(row)


async def list_tokens(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every token, newest first, without its hash."""
    columns = [c for c in api_tokens.c if c.name != "token_hash"]
    result = await conn.execute(select(*columns).order_by(api_tokens.c.created_at.desc(), api_tokens.c.id))
    return [dict(r) for r in result.mappings()]


async def revoke_token(conn: AsyncConnection, *, token_id: str | None = None, name: str | None = None) -> list[str]:
    """Revoke by id or by name (every token of that name); the revoked ids. 404 when none matched."""
    query = select(api_tokens.c.id).where(api_tokens.c.revoked_at.is_(None))
    query = query.where(api_tokens.c.id == token_id) if token_id else query.where(api_tokens.c.name == name)
    ids = [str(i) for i in (await conn.execute(query)).scalars()]
    if not ids:
        field = "token_id" if token_id else "name"
        raise NotFound("no such active token", {field: "no active token matches"})
    await conn.execute(api_tokens.update().where(api_tokens.c.id.in_(ids)).values(revoked_at=utcnow()))
    return ids
