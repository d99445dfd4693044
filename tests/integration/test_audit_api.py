"""``GET /api/v1/audit`` and the console's audit page: newest first, keyset paging by ``before``
without gaps or overlaps, admin tokens only, bad parameters named."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from broadcaster.domain import audit
from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from tests.integration.test_console import login
from tests.integration.test_openapi import conforms, served_document

ACTORS = ("user:alice", "token:deploy-bot", "cli:ops", "system:reminders")


async def seed(runtime: Runtime, count: int, start: int = 0) -> None:
    """``count`` entries, each in its own transaction as real writes are; action ``act.N``."""
    for n in range(start, start + count):
        async with runtime.engine.begin() as conn:
            await audit.record(conn, ACTORS[n % len(ACTORS)], f"act.{n}", target=f"t{n}", n=n)


async def bearer(runtime: Runtime, role: str) -> dict[str, str]:
    async with runtime.engine.begin() as conn:
        return {"Authorization": f"Bearer {await create_token(conn, f'{role}-token', role)}"}


async def get_audit(client: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/audit", headers=auth, params=params)
    assert response.status_code == 200, response.text
    conforms(await served_document(client), response)
    body: dict[str, Any] = response.json()
    return body


async def test_entries_newest_first_with_every_field(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await seed(runtime, 4)
    body = await get_audit(client, auth)
    assert [e["action"] for e in body["entries"]] == ["act.3", "act.2", "act.1", "act.0"]
    assert body["next_before"] is None
    newest = body["entries"][0]
    assert set(newest) == {"id", "actor", "action", "target", "details", "at"}
    assert (newest["actor"], newest["target"], newest["details"]) == ("system:reminders", "t3", {"n": 3})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", newest["at"])
    assert [e["actor"] for e in body["entries"]] == list(reversed(ACTORS))


async def test_paging_by_before_has_no_gaps_or_overlaps(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await seed(runtime, 23)
    seen: list[str] = []
    pages = []
    before: int | None = None
    while True:
        body = await get_audit(client, auth, limit=5, **({"before": before} if before is not None else {}))
        pages.append(len(body["entries"]))
        seen += [e["action"] for e in body["entries"]]
        ids = [e["id"] for e in body["entries"]]
        assert ids == sorted(ids, reverse=True) and (before is None or max(ids) < before)
        if len(pages) == 1:
            await seed(runtime, 2, start=100)  # written while paging: never shifts the pages behind
        before = body["next_before"]
        if before is None:
            break
        assert before == ids[-1]
    assert pages == [5, 5, 5, 5, 3]
    assert seen == [f"act.{n}" for n in range(22, -1, -1)]
    fresh = await get_audit(client, auth, limit=3)
    assert [e["action"] for e in fresh["entries"]] == ["act.101", "act.100", "act.22"]


async def test_a_full_last_page_says_there_is_no_more(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await seed(runtime, 6)
    first = await get_audit(client, auth, limit=3)
    second = await get_audit(client, auth, limit=3, before=first["next_before"])
    assert [e["action"] for e in second["entries"]] == ["act.2", "act.1", "act.0"]
    assert second["next_before"] is None
    assert (await get_audit(client, auth, limit=3, before=second["entries"][-1]["id"]))["entries"] == []


@pytest.mark.parametrize("role", ["viewer", "agent", "commander"])
async def test_only_admin_tokens(client: httpx.AsyncClient, runtime: Runtime, role: str) -> None:
    await seed(runtime, 1)
    response = await client.get("/api/v1/audit", headers=await bearer(runtime, role))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden" and "admin" in error["message"] and "token" in error["fields"]
    conforms(await served_document(client), response)
    assert (await client.get("/api/v1/audit")).status_code == 401
    assert (await client.get("/api/v1/audit", headers=await bearer(runtime, "admin"))).status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("limit=abc", 400, "limit"),
        ("limit=0", 422, "limit"),
        ("limit=1001", 422, "limit"),
        ("limit=-5", 422, "limit"),
        ("limit=", 400, "limit"),
        ("before=x", 400, "before"),
        ("before=0", 422, "before"),
        ("before=-1", 422, "before"),
        ("before=99999999999999999999", 422, "before"),
        ("before=1.5", 400, "before"),
    ],
)
async def test_bad_parameters_name_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], query: str, status: int, field: str
) -> None:
    response = await client.get(f"/api/v1/audit?{query}", headers=auth)
    assert response.status_code == status, response.text
    assert list(response.json()["error"]["fields"]) == [field]
    conforms(await served_document(client), response)


async def test_the_console_page_reads_the_same_pages(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await seed(runtime, 120)
    await login(client, runtime, "auditor", "admin")  # writes the newest entry: its login
    api = await get_audit(client, auth, limit=100)
    newest = await client.get("/console/audit")
    assert newest.status_code == 200
    older = re.search(r'href="(/console/audit\?before=(\d+))" rel="next">Older<', newest.text)
    assert older, newest.text
    assert int(older.group(2)) == api["next_before"]
    assert ">act.21<" in newest.text and ">act.20<" not in newest.text and ">login<" in newest.text
    last = await client.get(older.group(1))
    assert last.status_code == 200
    assert ">act.20<" in last.text and ">act.0<" in last.text and ">act.21<" not in last.text
    assert 'rel="next"' not in last.text and 'href="/console/audit"' in last.text
    bad = await client.get("/console/audit?before=nope")
    assert bad.status_code == 422 and "before" in bad.json()["error"]["fields"]
