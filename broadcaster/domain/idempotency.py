"""Idempotency keys: a retried post returns the first answer and never records a second update.

A commander on a bad connection sends, times out, and sends again. With the same
``Idempotency-Key`` (per actor) the second request changes nothing and gets the first answer.

The key row is inserted *first*, in the same transaction as the update, under the primary
key ``(key, actor)``. A concurrent duplicate blocks on that insert until the first
transaction ends, then finds the row: there is never a moment where both can write. The
row holds a fingerprint of the request (same key, different body: refused), the update it
recorded, and once built the exact answer, replayed verbatim::

    async with engine.begin() as conn:
        stored = await claim(conn, key, actor, fingerprint("POST", path, body))
        if stored is not None:
            ...  # replay stored.status_code / stored.body (or rebuild from stored.ref)
        posted = ...  # write the update in this same transaction
        await store_ref(conn, key, actor, posted)
    ...  # enqueue, build the answer, then remember_answer(...) for verbatim replays

``broadcaster.posting.post`` is the one caller of ``claim``/``store_ref``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcaster.db import idempotency_keys, utcnow
from broadcaster.delivery.ledger import insert_ignoring_conflicts
from broadcaster.domain.incidents import Posted
from broadcaster.errors import Conflict, InputError

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255


class KeyReused(InputError):
    """The key was first used for a different request."""

    status_code = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Stored:
    """The first request's answer: ``body`` once built, ``ref`` (incident_id, update_id) always."""

    status_code: int
    ref: dict[str, str]
    body: Any | None = None


def check_key(raw: str | None) -> str | None:
    """The key from a header or form field (``None`` when absent); 422 when malformed."""
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise InputError("invalid Idempotency-Key", {"Idempotency-Key": f"1 to {MAX_KEY_CHARS} printable characters"})
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    """A stable digest of what was asked (canonical JSON), to tell a retry from a reuse."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(conn: AsyncConnection, key: str, actor: str, digest: str) -> Stored | None:
    inserted = await conn.execute(
        insert_ignoring_conflicts(conn, idempotency_keys)
        .values(key=key, actor=actor, request_hash=digest, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    if inserted.rowcount == 1:
        return None
    row = (
        (
            await conn.execute(
                select(idempotency_keys).where(idempotency_keys.c.key == key, idempotency_keys.c.actor == actor)
            )
        )
        .mappings()
        .one()
    )
    if row["request_hash"] != digest:
        raise KeyReused(
            "this Idempotency-Key was used for a different request",
            {"Idempotency-Key": "already used with another body; use a new key"},
        )
    stored = row["response"] or {}
    if row["status_code"] is None or "ref" not in stored:
        # Only possible when the first transaction was rolled back after our insert waited on it.
        raise Conflict(
            "a request with this Idempotency-Key is still in progress",
            {"Idempotency-Key": "in progress; retry shortly"},
        )
    return Stored(int(row["status_code"]), dict(stored["ref"]), stored.get("body"))


async def store_ref(conn: AsyncConnection, key: str, actor: str, posted: Posted, status_code: int = 201) -> None:
    """Remember, in the posting transaction, which update the claimed key recorded."""
    ref = {"incident_id": posted.incident_id, "update_id": posted.update_id}
    await conn.execute(
        idempotency_keys.update()
        .where(idempotency_keys.c.key == key, idempotency_keys.c.actor == actor)
        .values(status_code=status_code, response={"ref": ref})
    )


async def remember_answer(engine: AsyncEngine, key: str, actor: str, status_code: int, body: Any) -> None:
    """Store the exact answer given the first time, for verbatim replays."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(idempotency_keys.c.response).where(
                    idempotency_keys.c.key == key, idempotency_keys.c.actor == actor
                )
            )
        ).scalar()
        ref = dict(row or {}).get("ref", {})
        await conn.execute(
            idempotency_keys.update()
            .where(idempotency_keys.c.key == key, idempotency_keys.c.actor == actor)
            .values(status_code=status_code, response={"ref": ref, "body": body})
        )
