"""The commander console over HTTP: login, roles, CSRF, audit, preview token, send and fan-out."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.db import audit_log, incidents, outbox, updates
from broadcaster.domain import incident_templates
from broadcaster.domain.users import create_user
from broadcaster.runtime import Runtime
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from tests.conftest import run_worker

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def login(client: httpx.AsyncClient, runtime: Runtime, username: str, role: str, **extra: Any) -> str:
    """Create the user, log in through the form, return the session's CSRF token."""
    async with runtime.engine.begin() as conn:
        await create_user(conn, username, PASSWORD, role, **extra)
    page = await client.get("/login")
    token = CSRF.search(page.text)
    assert token, page.text
    response = await client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1), "next": "/console"}
    )
    assert response.status_code == 303, response.text
    dashboard = await client.get("/console", headers={"accept": "text/html"})
    assert dashboard.status_code == 200
    csrf = CSRF.search(dashboard.text)
    assert csrf
    return csrf.group(1)


def form(csrf: str, **values: Any) -> dict[str, Any]:
    base = {
        "csrf_token": csrf,
        "title": "Checkout failing",
        "status": "investigating",
        "impact": "major",
        "message": "We are investigating **failed payments**.",
        "next_update_in_minutes": "30",
        "channels_shown": "1",
        "channels": ["webhook"],
    }
    base.update(values)
    return base


async def preview(client: httpx.AsyncClient, csrf: str, data: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in data.items() if k != "preview_token"}
    response = await client.post("/console/preview", data=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def count(runtime: Runtime, table: Any) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar() or 0)


async def actions(runtime: Runtime) -> list[tuple[str, str]]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(select(audit_log.c.actor, audit_log.c.action).order_by(audit_log.c.id))
        return [(r.actor, r.action) for r in rows]


async def test_login_required_and_dashboard(client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await client.get("/console", headers={"accept": "text/html"})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert (await client.post("/console/send", data={})).status_code == 401
    await login(client, runtime, "ic", "commander")
    page = await client.get("/console")
    assert "ic (commander)" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (await client.get("/console/static/console.js")).status_code == 200
    assert (await client.get("/console/static/../console.py")).status_code == 404


async def test_csrf_missing_is_403(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "ic", "commander")
    data = form(csrf)
    data.pop("csrf_token")
    assert (await client.post("/console/send", data=data)).status_code == 403
    assert (await client.post("/console/preview", data=data)).status_code == 403
    assert (await client.post("/console/templates", data={"name": "x"})).status_code == 403
    bad = await client.post("/console/preview", data=data, headers={"X-CSRF-Token": "forged"})
    assert bad.status_code == 403
    assert await count(runtime, incidents) == 0


async def test_viewer_reads_but_cannot_post(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "watcher", "viewer")
    assert (await client.get("/console")).status_code == 200
    assert (await client.get("/console/templates")).status_code == 200
    assert (await client.get("/console/channels")).status_code == 200
    assert (await client.get("/console/compose")).status_code == 403
    assert (await client.post("/console/preview", data=form(csrf), headers={"X-CSRF-Token": csrf})).status_code == 403
    assert (await client.post("/console/send", data=form(csrf))).status_code == 403
    assert (await client.post("/console/templates", data={"csrf_token": csrf, "name": "x"})).status_code == 403
    assert (await client.get("/console/audit")).status_code == 403
    assert (await client.post("/console/users", data={"csrf_token": csrf})).status_code == 403
    assert await count(runtime, incidents) == 0


async def test_send_needs_a_preview_of_exactly_that_content(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "ic", "commander")
    data = form(csrf)
    previewed = await preview(client, csrf, data)
    assert set(previewed["renditions"]) == {"webhook"}
    assert 'data-channel="webhook"' in previewed["html"]

    no_token = await client.post("/console/send", data=data)
    assert no_token.status_code == 409
    edited = await client.post(
        "/console/send", data={**data, "message": "Something else.", "preview_token": previewed["token"]}
    )
    assert edited.status_code == 409
    other_channels = await client.post(
        "/console/send", data={**data, "channels": ["webhook", "status_page"], "preview_token": previewed["token"]}
    )
    assert other_channels.status_code == 409
    assert "differs from the last preview" in edited.text
    assert await count(runtime, incidents) == 0

    sent = await client.post("/console/send", data={**data, "preview_token": previewed["token"]})
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].startswith("/console/updates/")
    assert await count(runtime, incidents) == 1
    assert ("user:ic", "send_refused") in await actions(runtime)


async def test_compose_from_template_send_and_fan_out(client: httpx.AsyncClient, runtime: Runtime, settings) -> None:
    async with runtime.engine.begin() as conn:
        assert await incident_templates.seed_templates(conn) == 5
        assert await incident_templates.seed_templates(conn) == 0
        template = next(t for t in await incident_templates.list_templates(conn) if t["crisis_type"] == "security")
    admin_csrf = await login(client, runtime, "ic", "admin")
    page = await client.get(f"/console/compose?template={template['id']}")
    assert page.status_code == 200
    assert template["title"] in page.text and "Was my data stolen?" in page.text
    receivers = [WebhookReceiver(), WebhookReceiver()]
    async with serve_app(receivers[0].app()) as a, serve_app(receivers[1].app()) as b:
        for receiver, base in zip(receivers, (a, b), strict=True):
            response = await client.post(
                "/api/v1/subscribers",
                headers=await _api_auth(runtime),
                json={"channel": "webhook", "address": f"{base}/hook", "confirmed": True},
            )
            receiver.secret = response.json()["secret"]
        enabled = list(runtime.registry.enabled)
        agent = template["agent"]
        data = {
            "csrf_token": admin_csrf,
            "title": template["title"],
            "status": template["status"],
            "impact": template["impact"],
            "message": template["message"],
            "template_id": template["id"],
            "next_update_in_minutes": str(template["next_update_in_minutes"]),
            "channels_shown": "1",
            "channels": enabled,
            "talking_points": agent["talking_points"],
            "do_not_say": agent["do_not_say"],
            "escalation": agent["escalation"],
            "answer_question": [a["question"] for a in agent["approved_answers"]] + [""],
            "answer_answer": [a["answer"] for a in agent["approved_answers"]] + [""],
        }
        previewed = await preview(client, admin_csrf, data)
        assert set(previewed["renditions"]) == set(enabled)
        sent = await client.post("/console/send", data={**data, "preview_token": previewed["token"]})
        assert sent.status_code == 303, sent.text
        update_id = sent.headers["location"].rsplit("/", 1)[1]
        async with runtime.engine.connect() as conn:
            update = (await conn.execute(select(updates).where(updates.c.id == update_id))).mappings().one()
            incident = (
                (await conn.execute(select(incidents).where(incidents.c.id == update["incident_id"]))).mappings().one()
            )
            queued = sorted(
                (await conn.execute(select(outbox.c.channel).where(outbox.c.update_id == update_id))).scalars()
            )
        assert incident["template_id"] == template["id"] and incident["name"] == template["title"]
        assert update["author"] == "ic"
        assert update["agent"]["approved_answers"] == agent["approved_answers"]
        assert queued == sorted(enabled)
        behind = await client.get("/console/channels")
        assert "behind" in behind.text
        await run_worker(settings)
    assert [len(r.received) for r in receivers] == [1, 1]
    counts = (await client.get(f"/console/updates/{update_id}/deliveries.json")).json()["counts"]
    assert counts["webhook"] == {"pending": 0, "sent": 2, "failed": 0, "total": 2}
    assert all(c["pending"] == 0 and c["failed"] == 0 for c in counts.values())
    view = await client.get(f"/console/updates/{update_id}")
    assert view.status_code == 200 and 'data-channel="webhook"' in view.text
    consistency = (await client.get("/console/channels")).text
    webhook_row = consistency[consistency.index('data-channel="webhook"') :].split("</tr>")[0]
    assert "up to date" in webhook_row


async def _api_auth(runtime: Runtime) -> dict[str, str]:
    from broadcaster.domain.tokens import create_token

    async with runtime.engine.begin() as conn:
        return {"Authorization": f"Bearer {await create_token(conn, 'console-test')}"}


async def test_every_action_is_audited(client: httpx.AsyncClient, runtime: Runtime, settings) -> None:
    csrf = await login(client, runtime, "boss", "admin")
    auth = await _api_auth(runtime)
    component = (await client.post("/api/v1/components", headers=auth, json={"name": "API"})).json()
    gone = WebhookReceiver(script=[410])
    async with serve_app(gone.app()) as base:
        await client.post(
            "/api/v1/subscribers",
            headers=auth,
            json={"channel": "webhook", "address": f"{base}/hook", "confirmed": True},
        )
        # template create, edit, delete
        tdata = {"csrf_token": csrf, "name": "Flood", "title": "Flooding", "message": "Water.", "status": "identified"}
        assert (await client.post("/console/templates", data=tdata)).status_code == 303
        async with runtime.engine.connect() as conn:
            template_id = (await incident_templates.list_templates(conn))[0]["id"]
        assert (
            await client.post(f"/console/templates/{template_id}", data={**tdata, "message": "More water."})
        ).status_code == 303
        assert (
            await client.post(f"/console/templates/{template_id}/delete", data={"csrf_token": csrf})
        ).status_code == 303
        # incident, with a failing webhook, then retry
        data = form(csrf, channels=["webhook", "status_page"], **{f"component.{component['id']}": "major_outage"})
        previewed = await preview(client, csrf, data)
        sent = await client.post("/console/send", data={**data, "preview_token": previewed["token"]})
        update_id = sent.headers["location"].rsplit("/", 1)[1]
        await run_worker(settings)
        counts = (await client.get(f"/console/updates/{update_id}/deliveries.json")).json()
        assert counts["counts"]["webhook"]["failed"] == 1
        assert "410" in counts["failures"][0]["last_error"]
        retried = await client.post(
            f"/console/updates/{update_id}/retry", data={"csrf_token": csrf, "channel": "webhook"}
        )
        assert retried.status_code == 303
        await run_worker(settings)
        counts = (await client.get(f"/console/updates/{update_id}/deliveries.json")).json()["counts"]
        assert counts["webhook"] == {"pending": 0, "sent": 1, "failed": 0, "total": 1}
    # component-only changes, silent and notified
    status_url = f"/console/components/{component['id']}/status"
    assert (await client.post(status_url, data={"csrf_token": csrf, "status": "operational"})).status_code == 303
    notified = await client.post(status_url, data={"csrf_token": csrf, "status": "degraded_performance", "notify": "1"})
    assert notified.status_code == 303 and notified.headers["location"].startswith("/console/updates/")
    restored = await client.post(status_url, data={"csrf_token": csrf, "status": "operational", "notify": "1"})
    assert restored.status_code == 303
    async with runtime.engine.connect() as conn:
        titles = {r.name: r.status for r in await conn.execute(select(incidents.c.name, incidents.c.status))}
    assert titles["API degraded performance"] == "resolved"
    # users
    assert (
        await client.post(
            "/console/users", data={"csrf_token": csrf, "username": "newbie", "password": PASSWORD, "role": "viewer"}
        )
    ).status_code == 303
    users_page = await client.get("/console/users")
    newbie_id = re.search(
        r'action="/console/users/(\w+)/role"[^<]*<input[^>]*>\s*<label[^>]*>Role of newbie', users_page.text
    )
    assert newbie_id, users_page.text
    assert (
        await client.post(f"/console/users/{newbie_id.group(1)}/role", data={"csrf_token": csrf, "role": "commander"})
    ).status_code == 303
    # logout
    assert (await client.post("/logout", data={"csrf_token": csrf})).status_code == 303
    done = {action for actor, action in await actions(runtime) if actor == "user:boss"}
    assert done >= {
        "login",
        "template.create",
        "template.update",
        "template.delete",
        "incident.create",
        "deliveries.retry",
        "component.status",
        "user.create",
        "user.role",
        "logout",
    }
    csrf = await login(client, runtime, "auditor", "admin")
    log_page = await client.get("/console/audit")
    assert log_page.status_code == 200 and "template.delete" in log_page.text and "user.role" in log_page.text


async def test_maintenance_report_and_update_flow(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "ic", "commander")
    data = {
        "csrf_token": csrf,
        "kind": "maintenance",
        "title": "Database upgrade",
        "status": "scheduled",
        "message": "We will upgrade the database.",
        "scheduled_for": "2030-01-05T02:00",
        "scheduled_until": "2030-01-05T04:00",
        "channels_shown": "1",
        "channels": ["webhook"],
    }
    previewed = await preview(client, csrf, data)
    payload = previewed["renditions"]["webhook"]["data"]
    assert payload["incident"]["kind"] == "maintenance" and payload["update"]["status"] == "scheduled"
    sent = await client.post("/console/send", data={**data, "preview_token": previewed["token"]})
    assert sent.status_code == 303, sent.text
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(incidents))).mappings().one()
    assert row["kind"] == "maintenance" and row["scheduled_for"].hour == 2
    for status in ("in_progress", "completed"):
        page = await client.get(f"/console/compose?incident_id={row['id']}&status={status}&message=Now+{status}.")
        assert page.status_code == 200
        step = {
            "csrf_token": csrf,
            "incident_id": row["id"],
            "status": status,
            "message": f"Now {status}.",
            "channels_shown": "1",
            "channels": ["webhook"],
        }
        token = (await preview(client, csrf, step))["token"]
        assert (await client.post("/console/send", data={**step, "preview_token": token})).status_code == 303
    incident_page = await client.get(f"/console/incidents/{row['id']}")
    assert incident_page.status_code == 200 and "Completed" in incident_page.text
    report = await client.get(f"/console/incidents/{row['id']}/report.md")
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    assert "Time to first public update" in report.text and "| 3 |" in report.text
    assert (await client.get(f"/console/incidents/{row['id']}/report")).status_code == 200


async def test_bad_input_is_a_4xx_never_a_500(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "ic", "commander")
    bad = await client.post(
        "/console/preview",
        data=form(csrf, next_update_in_minutes="soon", status="nope"),
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == 422 and bad.json()["token"] == ""
    unknown = await client.post(
        "/console/preview", data=form(csrf, channels=["carrier-pigeon"]), headers={"X-CSRF-Token": csrf}
    )
    assert unknown.status_code == 422 and "channels" in unknown.json()["error"]["fields"]
    assert (await client.get("/console/incidents/nope")).status_code == 404
    assert (await client.get("/console/updates/nope")).status_code == 404
    assert (
        await client.post("/console/updates/nope/retry", data={"csrf_token": csrf, "channel": "webhook"})
    ).status_code == 404


@pytest.mark.parametrize("path", ["/console/compose?template=nope", "/console/templates/nope"])
async def test_unknown_template_is_404(client: httpx.AsyncClient, runtime: Runtime, path: str) -> None:
    await login(client, runtime, "ic", "commander")
    assert (await client.get(path)).status_code == 404
