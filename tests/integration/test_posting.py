"""The one posting service: the preview is its dry run, flags do what they say, every entry is audited."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from typing import Any

import httpx
from sqlalchemy import func, select

from broadcaster.config import Settings
from broadcaster.db import audit_log, deliveries, incidents, outbox, updates
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from tests.conftest import run_worker
from tests.integration.test_console import form, login, preview

VOLATILE = {"id", "update_id", "created_at", "timestamp", "updated_at", "url", "number"}


def without_volatile(value: Any, real_id: str = "") -> Any:
    """A rendition with ids and times left out (they differ between a dry run and the post)."""
    if isinstance(value, dict):
        return {k: without_volatile(v, real_id) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [without_volatile(v, real_id) for v in value]
    return value


async def component(client: httpx.AsyncClient, auth: dict[str, str], name: str = "API") -> str:
    response = await client.post("/api/v1/components", headers=auth, json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def count(rt: Runtime, table: Any, *where: Any) -> int:
    async with rt.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar() or 0)


async def test_resolve_preview_equals_what_the_fanout_renders(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    api = await component(client, auth)
    opened = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={"title": "API down", "status": "investigating", "message": "Down.", "components": {api: "major_outage"}},
    )
    incident_id = opened.json()["id"]
    resolve = {"status": "resolved", "message": "Fixed."}  # names no components: they are restored
    previewed = await client.post("/api/v1/preview", headers=auth, json={**resolve, "incident_id": incident_id})
    assert previewed.status_code == 200, previewed.text
    assert await count(runtime, updates) == 1, "the preview kept nothing"
    posted = await client.post(f"/api/v1/incidents/{incident_id}/updates", headers=auth, json=resolve)
    update_id = posted.json()["id"]
    webhook = previewed.json()["webhook"]
    assert [c["new_status"] for c in webhook["data"]["components"]] == ["operational"], webhook
    for name, rendition in previewed.json().items():
        sent = await runtime.fanout.rendition(update_id, name)
        assert without_volatile(rendition) == without_volatile(sent), name


async def test_maintenance_preview_is_a_maintenance(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {
        "title": "Database upgrade",
        "kind": "maintenance",
        "status": "scheduled",
        "message": "Planned.",
        "scheduled_for": "2030-01-01T10:00:00Z",
        "scheduled_until": "2030-01-01T11:00:00Z",
    }
    previewed = await client.post("/api/v1/preview", headers=auth, json=body)
    assert previewed.status_code == 200, previewed.text
    data = previewed.json()["webhook"]["data"]
    assert (data["incident"]["kind"], data["update"]["status"], data["incident"]["impact"]) == (
        "maintenance",
        "scheduled",
        "maintenance",
    )
    missing = await client.post("/api/v1/preview", headers=auth, json={"status": "investigating", "message": "x"})
    assert missing.status_code == 422 and "title" in missing.json()["error"]["fields"]


async def test_deliver_notifications_false_notifies_no_one(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    receiver = WebhookReceiver()
    async with serve_app(receiver.app) as base:
        async with runtime.engine.begin() as conn:
            await upsert_subscriber(
                conn,
                SubscriberIn(channel="webhook", address=f"{base}/hook", confirmed=True),
                allow_private_webhooks=True,
            )
        quiet = {
            "title": "Quiet fix",
            "status": "investigating",
            "message": "Only on the page.",
            "deliver_notifications": False,
        }
        previewed = await client.post("/api/v1/preview", headers=auth, json=quiet)
        assert set(previewed.json()) == {"status_page", "desk"}
        posted = await client.post("/api/v1/incidents", headers=auth, json=quiet)
        assert posted.status_code == 201, posted.text
        update_id = posted.json()["update"]["id"]
        assert posted.json()["update"]["channels"] == ["status_page", "desk"]
        summary = (await client.get("/api/v2/summary.json")).json()
        assert [i["name"] for i in summary["incidents"]] == ["Quiet fix"]
        await run_worker(settings)
        assert receiver.received == []
        assert (
            await count(runtime, deliveries, deliveries.c.update_id == update_id, deliveries.c.channel == "webhook")
            == 0
        )
        loud = await client.post("/api/v1/incidents", headers=auth, json={**quiet, "channels": ["webhook"]})
        assert loud.status_code == 422 and "deliver_notifications" in loud.json()["error"]["fields"]


async def test_api_cli_and_console_posts_are_audited(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    api = await client.post(
        "/api/v1/incidents", headers=auth, json={"title": "From the API", "status": "investigating", "message": "x"}
    )
    assert api.status_code == 201
    env = {
        **os.environ,
        "BROADCASTER_DATABASE_URL": settings.database_url,
        "BROADCASTER_REDIS_URL": settings.redis_url,
        "BROADCASTER_QUEUE_NAME": settings.queue_name,
        "BROADCASTER_SECRET_KEY": "test-secret-key",
        "BROADCASTER_PUBLIC_URL": "http://status.test",
    }
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "broadcaster.cli",
        "post",
        "--title",
        "From the CLI",
        "--message",
        "y",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 0, err.decode()
    csrf = await login(client, runtime, "ic", "commander")
    data = form(csrf, title="From the console")
    data["preview_token"] = (await preview(client, csrf, data))["token"]
    assert (await client.post("/console/send", data=data)).status_code == 303
    listed = await client.get("/api/v1/audit", headers=auth, params={"limit": 50})
    assert listed.status_code == 200, listed.text
    creates = [
        (e["actor"], e["details"].get("incident_id"))
        for e in listed.json()["entries"]
        if e["action"] == "incident.create"
    ]
    async with runtime.engine.connect() as conn:
        ids = {r.name: r.id for r in await conn.execute(select(incidents.c.name, incidents.c.id))}
    assert creates == [
        ("user:ic", ids["From the console"]),
        (f"cli:{getpass.getuser()}", ids["From the CLI"]),
        ("token:tests", ids["From the API"]),
    ]
    async with runtime.engine.connect() as conn:
        actors = {r.actor for r in await conn.execute(select(audit_log.c.actor))}
    assert all(":" in actor for actor in actors), actors


async def test_a_rejected_post_writes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    bad = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={"title": "x", "status": "investigating", "message": "x", "components": {"nope": "major_outage"}},
    )
    assert bad.status_code == 422
    assert await count(runtime, incidents) == 0
    assert await count(runtime, outbox) == 0
    assert await count(runtime, audit_log) == 0


async def test_a_resolve_kept_off_the_page_leaves_components_alone(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    api = await component(client, auth)
    opened = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={"title": "API down", "status": "investigating", "message": "Down.", "components": {api: "major_outage"}},
    )
    closed = await client.post(
        f"/api/v1/incidents/{opened.json()['id']}/updates",
        headers=auth,
        json={"status": "resolved", "message": "Agents only: fixed.", "channels": ["desk"]},
    )
    assert closed.status_code == 201
    listed = {c["id"]: c["status"] for c in (await client.get("/api/v1/components", headers=auth)).json()}
    assert listed[api] == "major_outage", "a desk-only resolve left the public components alone"


async def test_a_notified_component_change_honours_deliver_notifications(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    api = await component(client, auth)
    quiet = await client.patch(
        f"/api/v1/components/{api}",
        headers=auth,
        json={"status": "major_outage", "notify": True, "deliver_notifications": False},
    )
    assert quiet.status_code == 200, quiet.text
    incident = (await client.get(f"/api/v1/incidents/{quiet.json()['incident_id']}", headers=auth)).json()
    assert incident["updates"][0]["channels"] == ["status_page", "desk"], "no channel that notifies people"
    loud = await client.patch(f"/api/v1/components/{api}", headers=auth, json={"status": "operational", "notify": True})
    update = (await client.get(f"/api/v1/incidents/{loud.json()['incident_id']}", headers=auth)).json()["updates"][0]
    assert "webhook" in update["channels"]
