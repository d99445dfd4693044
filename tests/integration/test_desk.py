"""The agent desk over HTTP: roles, the public text verbatim, agent material, search, live events."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster.db import deliveries
from broadcaster.domain.users import create_user
from broadcaster.render import markdown_to_html
from broadcaster.runtime import Runtime
from sandbox.serve import serve_app
from status_page.desk import DeskCache
from tests.conftest import run_worker

PASSWORD = "correct horse battery"
FIRST = "We are investigating **elevated error rates** on the API.\n\n- EU first\n- then US"
AGENT = {
    "talking_points": "Apologise. The API is failing for *some* requests; no data is lost.",
    "approved_answers": [
        {"question": "Will I get a refund for the downtime?", "answer": "Credits follow the **SLA** policy."},
        {"question": "When will it be fixed?", "answer": "We will post an update within 30 minutes."},
    ],
    "do_not_say": "Do not guess a cause.",
    "escalation": "Enterprise customers: transfer to the on-call TAM.",
}


async def make_user(runtime: Runtime, username: str, role: str) -> None:
    async with runtime.engine.begin() as conn:
        await create_user(conn, username, PASSWORD, role)


async def login(client: httpx.AsyncClient, username: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    response = await client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1), "next": "/desk"}
    )
    assert response.status_code == 303, response.text


async def open_incident(client: httpx.AsyncClient, auth: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {
        "title": "API errors",
        "status": "investigating",
        "impact": "major",
        "message": FIRST,
        "agent": AGENT,
        **extra,
    }
    response = await client.post("/api/v1/incidents", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def post_update(client: httpx.AsyncClient, auth: dict[str, str], incident_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/incidents/{incident_id}/updates", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
async def agent_client(client: httpx.AsyncClient, runtime: Runtime) -> httpx.AsyncClient:
    await make_user(runtime, "ana", "agent")
    await login(client, "ana")
    return client


async def test_agent_sees_the_public_text_verbatim_and_the_agent_material(agent_client, auth) -> None:
    api = await open_incident(agent_client, auth, components={})
    await post_update(
        agent_client,
        auth,
        api["id"],
        status="identified",
        message="We found a bad **deploy** & are rolling it back <script>x()</script>.",
        agent={**AGENT, "talking_points": "Say the fix is being rolled out."},
    )
    response = await agent_client.get("/desk", headers={"Accept": "text/html"})
    assert response.status_code == 200
    page = response.text
    latest = markdown_to_html("We found a bad **deploy** & are rolling it back <script>x()</script>.")
    assert latest in page, "the desk must show the latest public update exactly as the status page renders it"
    assert markdown_to_html(FIRST) not in page, "only the latest update is on top"
    assert "Say the fix is being rolled out." in page
    assert "Will I get a refund for the downtime?" in page
    assert "Credits follow the <strong>SLA</strong> policy." in page  # agent markdown, rendered
    assert "Do not guess a cause." in page and "on-call TAM" in page
    assert page.index(latest) < page.index("Talking points") < page.index("Approved answers")
    assert "<script>x()" not in page
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    fragment = await agent_client.get("/desk/fragment")
    assert fragment.status_code == 200 and latest in fragment.text and "<html" not in fragment.text


async def test_resolved_incident_moves_below(agent_client, auth) -> None:
    api = await open_incident(agent_client, auth)
    await post_update(agent_client, auth, api["id"], status="resolved", message="All fixed.")
    page = (await agent_client.get("/desk")).text
    assert "No active incidents" in page
    recent = page[page.index("Resolved in the last 24 hours") :]
    assert markdown_to_html("All fixed.") in recent


async def test_viewer_is_forbidden(client, runtime) -> None:
    await make_user(runtime, "vic", "viewer")
    await login(client, "vic")
    for path in ("/desk", "/desk/fragment", "/desk/search?q=refund", "/desk/events"):
        response = await client.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"


async def test_commander_may_read_the_desk(client, runtime) -> None:
    await make_user(runtime, "cmd", "commander")
    await login(client, "cmd")
    assert (await client.get("/desk")).status_code == 200


async def test_anonymous_is_sent_to_login(client) -> None:
    page = await client.get("/desk", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/desk"
    for path in ("/desk", "/desk/fragment", "/desk/search?q=x", "/desk/events"):
        response = await client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 401, path


async def test_search_finds_an_approved_answer_by_a_word_in_its_question(agent_client, auth) -> None:
    await open_incident(agent_client, auth)
    found = await agent_client.get("/desk/search", params={"q": "REFUND"})
    assert found.status_code == 200
    assert "Will I get a refund for the downtime?" in found.text
    assert "Credits follow the <strong>SLA</strong> policy." in found.text
    assert "When will it be fixed?" not in found.text, "only the matching answer is listed"
    missing = await agent_client.get("/desk/search", params={"q": "pineapple"})
    assert missing.status_code == 200
    assert "No results" in missing.text and "refund for the downtime" not in missing.text
    # A caller's whole question finds its answer; stop words alone do not drown it.
    question = await agent_client.get("/desk/search", params={"q": "when is it going to be fixed?"})
    assert "When will it be fixed?" in question.text


@pytest.mark.parametrize(
    "query", ["", "   ", "%", "_", "x" * 5000, "<script>", "'; DROP TABLE incidents; --", "\u0000", "ça ne marche pas"]
)
async def test_search_never_fails_on_odd_input(agent_client, auth, query) -> None:
    await open_incident(agent_client, auth)
    response = await agent_client.get("/desk/search", params={"q": query})
    if "\u0000" in query:  # refused before any handler (NulGuardMiddleware), never a 500
        assert response.status_code == 400 and "q" in response.text
        return
    assert response.status_code == 200
    assert "<script>" not in response.text.split("<main", 1)[1]


async def test_search_matches_public_updates_and_talking_points(agent_client, auth) -> None:
    await open_incident(agent_client, auth)
    page = (await agent_client.get("/desk/search", params={"q": "elevated"})).text
    assert markdown_to_html(FIRST) in page
    page = (await agent_client.get("/desk/search", params={"q": "apologise"})).text
    assert "no data is lost" in page


async def test_static_files(agent_client) -> None:
    script = await agent_client.get("/desk/static/desk.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    cached = await agent_client.get("/desk/static/desk.js", headers={"If-None-Match": script.headers["etag"]})
    assert cached.status_code == 304
    assert (await agent_client.get("/desk/static/desk.css")).status_code == 200
    assert (await agent_client.get("/desk/static/..%2Fdesk.html")).status_code == 404
    assert (await agent_client.get("/desk/static/nope.js")).status_code == 404


async def test_events_stream_update_and_published(app, client, auth, settings, runtime: Runtime) -> None:
    await make_user(runtime, "ana", "agent")
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as browser:
        await login(browser, "ana")
        async with browser.stream("GET", "/desk/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()

            async def next_event(incident_id: str | None = None) -> tuple[str, dict[str, Any]]:
                # The bus is shared by every process on this Redis: skip other tests' incidents.
                kind = ""
                async for line in lines:
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        data = json.loads(line[6:])
                        if incident_id is None or data.get("incident_id") == incident_id:
                            return kind, data
                raise AssertionError("stream ended")

            assert (await asyncio.wait_for(next_event(), 5))[0] == "ready"
            api = await open_incident(client, auth, channels=["desk"])
            kind, data = await asyncio.wait_for(next_event(api["id"]), 5)
            assert (kind, data["incident_id"]) == ("update", api["id"])
            await run_worker(settings)
            kind, data = await asyncio.wait_for(next_event(api["id"]), 5)
            assert (kind, data) == (
                "published",
                {"incident_id": api["id"], "update_id": api["update"]["id"], "channel": "desk"},
            )
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(deliveries.c.state).where(deliveries.c.channel == "desk"))).all()
    assert [r.state for r in rows] == ["sent"], "the desk is recorded in the ledger like any channel"


async def test_cached_desk_is_dropped_when_an_update_lands(app, agent_client, auth) -> None:
    assert isinstance(app.state.desk_cache, DeskCache), "the cache listens to the bus from startup"
    api = await open_incident(agent_client, auth)
    assert markdown_to_html(FIRST) in (await agent_client.get("/desk/fragment")).text  # now cached
    await post_update(agent_client, auth, api["id"], status="monitoring", message="A fix is live.")
    deadline = asyncio.get_running_loop().time() + 2
    while markdown_to_html("A fix is live.") not in (await agent_client.get("/desk/fragment")).text:
        assert asyncio.get_running_loop().time() < deadline, "the update event did not refresh the desk"
        await asyncio.sleep(0.05)
