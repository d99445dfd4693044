"""Console users with roles; passwords hashed with argon2.

Each user has a session epoch, kept in their session cookie at login and compared on every
request: logout, a password change and disabling bump it, which ends every session
the user has open.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import new_id, users, utcnow
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.models import ROLE_RANK, Role
from broadcaster.security import hash_password, verify_password

MIN_PASSWORD_CHARS = 10
MAX_USERNAME_CHARS = 150


def check_username(username: str) -> None:
    """Refuse a name no user can have (too long, or with a NUL) before it reaches a limiter or the database."""
    if len(username) > MAX_USERNAME_CHARS:
        raise InputError("username too long", {"username": f"at most {MAX_USERNAME_CHARS} characters"})
    if "\x00" in username:
        raise InputError("invalid username", {"username": "must not contain NUL characters"})


async def create_user(
    conn: AsyncConnection, username: str, password: str, role: str, email: str | None = None, phone: str | None = None
) -> dict[str, Any]:
    username = username.strip()
    if not username:
        raise InputError("a user needs a name", {"username": "must not be empty"})
    check_username(username)
    if role not in {r.value for r in Role}:
        raise InputError("unknown role", {"role": f"must be one of {', '.join(r.value for r in Role)}"})
    _check_password(password)
    if await get_user(conn, username) is not None:
        raise Conflict("user exists", {"username": "already taken"})
    user_id = new_id()
    await conn.execute(
        users.insert().values(
            id=user_id,
            username=username,
            email=email,
            phone=phone,
            password_hash=hash_password(password),
            role=role,
            created_at=utcnow(),
        )
    )
    user = await get_user(conn, username)
    assert user is not None
    return user


async def get_user(conn: AsyncConnection, username: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(users).where(users.c.username == username))).mappings().first()
    return dict(row) if row else None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError("password too short", {"password": f"at least {MIN_PASSWORD_CHARS} characters"})


async def check_login(conn: AsyncConnection, username: str, password: str) -> dict[str, Any] | None:
    """The user when the password matches and the account is active."""
    if len(username) > MAX_USERNAME_CHARS or "\x00" in username:
        return None
    user = await get_user(conn, username)
    if user is None or user["disabled_at"] is not None:
        return None
    return user if verify_password(user["password_hash"], password) else None


def has_role(user: dict[str, Any] | None, minimum: Role) -> bool:
    return user is not None and ROLE_RANK[Role(user["role"])] >= ROLE_RANK[minimum]


async def list_users(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every user, by name (password hashes left out)."""
    result = await conn.execute(
        select(
            users.c.id,
            users.c.username,
            users.c.email,
            users.c.phone,
            users.c.role,
            users.c.created_at,
            users.c.disabled_at,
        ).order_by(users.c.username)
    )
    return [dict(r) for r in result.mappings()]


async def set_role(conn: AsyncConnection, user_id: str, role: str) -> dict[str, Any]:
    """Change a user's role; returns the user's name and previous role.

    Sessions stay open: the role is read from the database on every request, so the user's
    next request already has the new role (logout, a password change and disabling end them).
    """
    if role not in {r.value for r in Role}:
        raise InputError("unknown role", {"role": f"must be one of {', '.join(r.value for r in Role)}"})
    row = (await conn.execute(select(users.c.username, users.c.role).where(users.c.id == user_id))).first()
    if row is None:
        raise NotFound("no such user", {"user_id": f"unknown user {user_id!r}"})
    await conn.execute(users.update().where(users.c.id == user_id).values(role=role))
    return {"username": row.username, "old_role": row.role}


async def session_user(conn: AsyncConnection, user_id: str) -> dict[str, Any] | None:
    """What a session needs of its user (one primary-key read): id, name, role, epoch, disabled_at."""
    row = (
        (
            await conn.execute(
                select(users.c.id, users.c.username, users.c.role, users.c.session_epoch, users.c.disabled_at).where(
                    users.c.id == user_id
                )
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def end_sessions(conn: AsyncConnection, user_id: str) -> None:
    """End every session of the user (logout): their cookies no longer match the epoch."""
    await conn.execute(users.update().where(users.c.id == user_id).values(session_epoch=users.c.session_epoch + 1))


async def _change(conn: AsyncConnection, user_id: str, **values: Any) -> str:
    """Apply ``values`` to the user, ending their sessions; returns the user's name."""
    name = (await conn.execute(select(users.c.username).where(users.c.id == user_id))).scalar_one_or_none()
    if name is None:
        raise NotFound("no such user", {"user_id": f"unknown user {user_id!r}"})
    await conn.execute(
        users.update().where(users.c.id == user_id).values(session_epoch=users.c.session_epoch + 1, **values)
    )
    return str(name)


async def set_password(conn: AsyncConnection, user_id: str, password: str) -> str:
    """Give the user a new password and end their sessions; returns the user's name."""
    _check_password(password)
    return await _change(conn, user_id, password_hash=hash_password(password))


async def set_disabled(conn: AsyncConnection, user_id: str, disabled: bool) -> str:
    """Disable (ending their sessions; they can no longer log in) or re-enable a user; returns their name."""
    return await _change(conn, user_id, disabled_at=utcnow() if disabled else None)
