"""Idempotency-Key: a commander's retried post returns the first answer, never a second update."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from broadcaster import posting
from broadcaster.actors import Actor
from broadcaster.db import idempotency_keys, outbox, updates
from broadcaster.post_requests import request_from_body
from broadcaster.runtime import Runtime

INCIDENT = {
    "title": "Checkout errors",
    "status": "investigating",
    "impact": "major",
    "message": "We are investigating.",
    "channels": ["webhook"],
}


async def count(rt: Runtime, table) -> int:  # type: ignore[no-untyped-def]
    async with rt.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_retried_incident_post_replays_the_first_answer(client: httpx.AsyncClient, auth, runtime) -> None:
    headers = {**auth, "Idempotency-Key": "retry-1"}
    first = await client.post("/api/v1/incidents", headers=headers, json=INCIDENT)
    second = await client.post("/api/v1/incidents", headers=headers, json=INCIDENT)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert await count(runtime, updates) == 1
    assert await count(runtime, outbox) == 1
    # Another key is another incident.
    third = await client.post("/api/v1/incidents", headers={**auth, "Idempotency-Key": "retry-2"}, json=INCIDENT)
    assert third.status_code == 201 and third.json()["id"] != first.json()["id"]


async def test_same_key_other_body_is_refused(client: httpx.AsyncClient, auth, runtime) -> None:
    headers = {**auth, "Idempotency-Key": "k"}
    assert (await client.post("/api/v1/incidents", headers=headers, json=INCIDENT)).status_code == 201
    other = await client.post("/api/v1/incidents", headers=headers, json={**INCIDENT, "title": "Other"})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await count(runtime, updates) == 1


async def test_keys_are_per_actor(client: httpx.AsyncClient, auth, runtime) -> None:
    from broadcaster.domain.tokens import create_token

    async with runtime.engine.begin() as conn:
        other_auth = {"Authorization": f"Bearer {await create_token(conn, 'other')}"}
    a = await client.post("/api/v1/incidents", headers={**auth, "Idempotency-Key": "shared"}, json=INCIDENT)
    b = await client.post("/api/v1/incidents", headers={**other_auth, "Idempotency-Key": "shared"}, json=INCIDENT)
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_invalid_body_does_not_burn_the_key(client: httpx.AsyncClient, auth, runtime) -> None:
    headers = {**auth, "Idempotency-Key": "fix-and-retry"}
    bad = await client.post("/api/v1/incidents", headers=headers, json={**INCIDENT, "status": "bogus"})
    assert bad.status_code == 422
    assert await count(runtime, idempotency_keys) == 0
    good = await client.post("/api/v1/incidents", headers=headers, json=INCIDENT)
    assert good.status_code == 201


async def test_malformed_key_is_a_field_error(client: httpx.AsyncClient, auth) -> None:
    response = await client.post("/api/v1/incidents", headers={**auth, "Idempotency-Key": "x" * 300}, json=INCIDENT)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["error"]["fields"]


async def test_update_post_replays(client: httpx.AsyncClient, auth, runtime) -> None:
    incident = (await client.post("/api/v1/incidents", headers=auth, json=INCIDENT)).json()
    body = {"status": "identified", "message": "Found it."}
    headers = {**auth, "Idempotency-Key": "upd-1"}
    path = f"/api/v1/incidents/{incident['id']}/updates"
    first = await client.post(path, headers=headers, json=body)
    second = await client.post(path, headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert await count(runtime, updates) == 2


async def test_concurrent_retries_record_one_update(client: httpx.AsyncClient, auth, runtime) -> None:
    headers = {**auth, "Idempotency-Key": "storm"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/incidents", headers=headers, json=INCIDENT) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await count(runtime, updates) == 1
    assert await count(runtime, outbox) == 1


async def test_posting_service_posts_once_per_key(runtime: Runtime) -> None:
    alice = Actor.user("alice", "u1")
    first = await posting.post(runtime, request_from_body(INCIDENT), actor=alice, idempotency_key="console-key")
    again = await posting.post(runtime, request_from_body(INCIDENT), actor=alice, idempotency_key="console-key")
    assert first.posted is not None and first.replayed is None
    assert again.replayed is not None and again.posted is None
    assert again.ref == first.ref
    assert await count(runtime, updates) == 1


async def test_console_double_submit_records_one_update(client: httpx.AsyncClient, runtime: Runtime) -> None:
    from tests.integration.test_console import form, login, preview

    csrf = await login(client, runtime, "ic", "commander")
    data = form(csrf)
    token = (await preview(client, csrf, data))["token"]
    first = await client.post("/console/send", data={**data, "preview_token": token})
    again = await client.post("/console/send", data={**data, "preview_token": token})  # the retry after a timeout
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert await count(runtime, updates) == 1
