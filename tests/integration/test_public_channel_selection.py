"""An update posted without the status page among its channels is on no public surface, but on the desk.

Public surfaces, each checked below: ``/``, ``/incidents/{id}``, ``/history`` (and ``/history/1``),
``/history.atom``, ``/history.rss``, every ``/api/v2/*.json`` path, the static export
(``status_page.public.static_export``) and the public ``/events`` stream. The desk (``/desk``) and
the console's incident page show everything.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import feedparser
import httpx

from broadcaster.runtime import Runtime
from broadcaster.views.statuspage_v2 import ENDPOINTS
from sandbox.serve import serve_app
from status_page.live import live_events
from status_page.public.pages import public_event
from status_page.public.static_export import export_site
from tests.conftest import run_worker
from tests.integration.test_desk import login, make_user

PUBLIC_TEXT = "We are investigating slow logins."
DESK_NOTE = "Agents only: the root cause is the Tuesday deploy, do not share."
HIDDEN_TITLE = "Quiet database failover"
HIDDEN_TEXT = "Desk only: failover in progress, nothing customers can see."
SECRETS = (DESK_NOTE, HIDDEN_TITLE, HIDDEN_TEXT, "Tuesday deploy", "failover")
PAGE_PATHS = ["/", "/history", "/history/1", "/history.atom", "/history.rss"]
API_PATHS = [f"/api/v2/{path}" for path in ENDPOINTS]


async def post(client: httpx.AsyncClient, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, headers=auth, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def seed(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    """A public incident with a desk-only 'resolved' note on top, and an incident posted to the desk alone."""
    api = await post(client, auth, "/api/v1/components", {"name": "Login"})
    public = await post(
        client,
        auth,
        "/api/v1/incidents",
        {
            "title": "Slow logins",
            "status": "investigating",
            "message": PUBLIC_TEXT,
            "components": {api["id"]: "degraded_performance"},
        },
    )
    note = await post(
        client,
        auth,
        f"/api/v1/incidents/{public['id']}/updates",
        {"status": "resolved", "message": DESK_NOTE, "channels": ["desk"]},
    )
    hidden = await post(
        client,
        auth,
        "/api/v1/incidents",
        {
            "title": HIDDEN_TITLE,
            "status": "identified",
            "impact": "critical",
            "message": HIDDEN_TEXT,
            "channels": ["desk"],
        },
    )
    return {"public": public, "note": note, "hidden": hidden}


def exported_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_no_secret(where: str, text: str, data: dict[str, Any]) -> None:
    for secret in (*SECRETS, data["note"]["id"], data["hidden"]["id"]):
        assert secret not in text, f"{secret!r} leaked on {where}"


async def test_desk_only_updates_are_on_no_public_surface(
    client, auth, settings, runtime: Runtime, tmp_path: Path
) -> None:
    data = await seed(client, auth)
    public_id, hidden_id = data["public"]["id"], data["hidden"]["id"]
    for path in [*PAGE_PATHS, *API_PATHS, f"/incidents/{public_id}"]:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert_no_secret(path, response.text, data)
    assert PUBLIC_TEXT in (await client.get(f"/incidents/{public_id}")).text
    assert (await client.get(f"/incidents/{hidden_id}")).status_code == 404
    for path in ["/history.atom", "/history.rss"]:
        entries = feedparser.parse((await client.get(path)).content).entries
        assert [e.title for e in entries] == ["Slow logins — Investigating"], path
    history = (await client.get("/history")).text
    assert "Slow logins" in history and "Investigating" in history

    await export_site(settings, runtime.engine, tmp_path)
    exported = exported_files(tmp_path)
    assert (tmp_path / "incidents" / f"{public_id}.html").is_file()
    assert not (tmp_path / "incidents" / f"{hidden_id}.html").exists()
    assert not (tmp_path / "incidents" / hidden_id).exists()
    for path in exported:
        assert_no_secret(f"static {path.relative_to(tmp_path)}", path.read_text(errors="replace"), data)
    assert PUBLIC_TEXT in (tmp_path / "incidents" / f"{public_id}.html").read_text()


async def test_public_state_is_what_was_published(client, auth) -> None:
    """The desk-only 'resolved' did not reach the public: it still reads investigating, unresolved."""
    data = await seed(client, auth)
    public_id = data["public"]["id"]
    summary = (await client.get("/api/v2/summary.json")).json()
    assert [i["id"] for i in summary["incidents"]] == [public_id]
    shown = summary["incidents"][0]
    assert (shown["status"], shown["resolved_at"], shown["impact"]) == ("investigating", None, "minor")
    assert [u["id"] for u in shown["incident_updates"]] == [data["public"]["update"]["id"]]
    assert shown["updated_at"] == shown["incident_updates"][0]["created_at"]
    unresolved = (await client.get("/api/v2/incidents/unresolved.json")).json()["incidents"]
    assert [i["id"] for i in unresolved] == [public_id]
    listed = (await client.get("/api/v2/incidents.json")).json()["incidents"]
    assert [i["id"] for i in listed] == [public_id]
    # The hidden incident's critical impact does not raise the public indicator.
    assert summary["status"]["indicator"] != "critical"
    home = (await client.get("/")).text
    assert "Active incidents" in home and "Slow logins" in home
    page = (await client.get(f"/incidents/{public_id}")).text
    assert "Investigating" in page and "Resolved" not in page


async def test_desk_and_console_show_everything(client, auth, runtime: Runtime) -> None:
    data = await seed(client, auth)
    await make_user(runtime, "cora", "commander")
    await login(client, "cora")
    desk = await client.get("/desk", headers={"Accept": "text/html"})
    assert desk.status_code == 200
    assert "Tuesday deploy" in desk.text and HIDDEN_TITLE in desk.text and "failover in progress" in desk.text
    console = await client.get(f"/console/incidents/{data['public']['id']}", headers={"Accept": "text/html"})
    assert console.status_code == 200 and "Tuesday deploy" in console.text and "slow logins" in console.text


async def read_until(lines: Any, sentinel: str) -> list[tuple[str, dict[str, Any]]]:
    """The stream's events up to the one whose ``incident_id`` is ``sentinel`` (or the ``ready`` event)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            event = json.loads(line[6:])
            if kind == sentinel or event.get("incident_id") == sentinel:
                return seen
            seen.append((kind, event))
    raise AssertionError("stream ended")


async def test_public_events_stream_drops_desk_only_updates(app, client, auth, settings, runtime: Runtime) -> None:
    heard: list[dict[str, Any]] = []
    live_events(app).add_listener(heard.append)  # what the bus delivered, before any filter
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    async with (
        serve_app(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as browser,
        browser.stream("GET", "/events") as stream,
    ):
        lines = stream.aiter_lines()
        await asyncio.wait_for(read_until(lines, "ready"), 5)
        data = await seed(client, auth)
        await run_worker(settings)  # the status page and the desk announce what they published
        # Redis delivers in order: once this arrives, every earlier event has been streamed or dropped.
        await runtime.bus.publish("update", {"incident_id": sentinel, "update_id": sentinel})
        streamed = await asyncio.wait_for(read_until(lines, sentinel), 10)
    ours = {data["public"]["id"], data["hidden"]["id"]}  # the bus is shared with other tests on this Redis
    events = [(kind, e) for kind, e in streamed if e.get("incident_id") in ours]
    public_update = data["public"]["update"]["id"]
    hidden_updates = {data["note"]["id"], data["hidden"]["update"]["id"]}
    assert sorted((kind, e["update_id"], e.get("channel")) for kind, e in events) == [
        ("published", public_update, "status_page"),
        ("update", public_update, None),
    ], events
    # The filter had something to drop: the bus carried the desk-only updates and the desk's announcements.
    passed = [{"kind": kind, **e} for kind, e in events]
    dropped = [
        e for e in heard if e.get("incident_id") in ours and {k: v for k, v in e.items() if k != "id"} not in passed
    ]  # frames carry the id apart
    assert hidden_updates <= {e["update_id"] for e in dropped}
    assert any(e.get("channel") == "desk" for e in dropped)
    assert not any(public_event(e) for e in dropped)


async def test_v2_deliver_notifications_is_the_stored_flag(client, auth) -> None:
    quiet = await post(
        client,
        auth,
        "/api/v1/incidents",
        {"title": "Quiet fix", "status": "investigating", "message": "Looking.", "deliver_notifications": False},
    )
    loud = await post(
        client,
        auth,
        f"/api/v1/incidents/{quiet['id']}/updates",
        {"status": "monitoring", "message": "Fixed, watching."},
    )
    silent = await post(
        client,
        auth,
        f"/api/v1/incidents/{quiet['id']}/updates",
        {"status": "resolved", "message": "Done.", "deliver_notifications": False},
    )
    flags = {
        u["id"]: u["deliver_notifications"]
        for u in (await client.get("/api/v2/incidents.json")).json()["incidents"][0]["incident_updates"]
    }
    assert flags == {quiet["update"]["id"]: False, loud["id"]: True, silent["id"]: False}
