"""End to end: API -> outbox -> real arq worker on real Redis -> signed webhooks -> ledger."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import select

from broadcaster.db import deliveries
from broadcaster.runtime import Runtime
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from tests.conftest import run_worker


async def subscribe_webhook(client: httpx.AsyncClient, auth: dict[str, str], url: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "webhook", "address": url, "confirmed": True}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["secret"].startswith("whsec_")
    return body


async def open_incident(client: httpx.AsyncClient, auth: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {
        "title": "API errors",
        "status": "investigating",
        "impact": "major",
        "message": "We are investigating **errors**.",
        "channels": ["webhook"],
        **extra,
    }
    response = await client.post("/api/v1/incidents", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_one_post_reaches_every_receiver_once_signed(client, auth, settings, runtime: Runtime) -> None:
    receivers = [WebhookReceiver() for _ in range(3)]
    async with (
        serve_app(receivers[0].app()) as a,
        serve_app(receivers[1].app()) as b,
        serve_app(receivers[2].app()) as c,
    ):
        for receiver, base in zip(receivers, (a, b, c), strict=True):
            receiver.secret = (await subscribe_webhook(client, auth, f"{base}/hook"))["secret"]
        incident = await open_incident(client, auth)
        await run_worker(settings)
    for receiver in receivers:
        assert len(receiver.received) == 1
        assert receiver.verified == 1
        payload = json.loads(receiver.received[0]["body"])
        assert payload["data"]["incident"]["id"] == incident["id"]
        assert payload["data"]["update"]["body_html"] == "<p>We are investigating <strong>errors</strong>.</p>"
    response = await client.get(f"/api/v1/updates/{incident['update']['id']}/deliveries", headers=auth)
    assert response.json() == {"webhook": {"pending": 0, "sent": 3, "failed": 0, "total": 3}}


async def test_retry_then_success_and_permanent_failure(client, auth, settings, runtime: Runtime) -> None:
    flaky = WebhookReceiver(script=[500, 500])
    gone = WebhookReceiver(script=[410] * 5)
    async with serve_app(flaky.app()) as flaky_url, serve_app(gone.app()) as gone_url:
        flaky.secret = (await subscribe_webhook(client, auth, f"{flaky_url}/hook"))["secret"]
        await subscribe_webhook(client, auth, f"{gone_url}/hook")
        incident = await open_incident(client, auth)
        await run_worker(settings)
    assert flaky.attempts == 3 and len(flaky.received) == 1 and flaky.verified == 1
    assert gone.attempts == 1, "a 410 must never be retried"
    async with runtime.engine.connect() as conn:
        rows = {
            r.address: r
            for r in await conn.execute(select(deliveries).where(deliveries.c.update_id == incident["update"]["id"]))
        }
    flaky_row = rows[f"{flaky_url}/hook"]
    assert (flaky_row.state, flaky_row.attempts) == ("sent", 3)
    gone_row = rows[f"{gone_url}/hook"]
    assert gone_row.state == "failed" and gone_row.attempts == 1
    assert "410" in gone_row.last_error


async def test_ledger_rows_never_sent_twice(client, auth, settings, runtime: Runtime) -> None:
    receiver = WebhookReceiver()
    async with serve_app(receiver.app()) as base:
        receiver.secret = (await subscribe_webhook(client, auth, f"{base}/hook"))["secret"]
        incident = await open_incident(client, auth)
        await run_worker(settings)
        # Relay and a duplicate batch job: the sent row is never claimed again.
        await runtime.fanout.relay()
        async with runtime.engine.connect() as conn:
            row_id = (await conn.execute(select(deliveries.c.id))).scalar_one()
        report = await runtime.fanout.deliver_batch(incident["update"]["id"], "webhook", row_id, row_id)
        await run_worker(settings)
    assert report.sent == 0
    assert len(receiver.received) == 1


async def test_subscriber_component_filter(client, auth, settings) -> None:
    a = (await client.post("/api/v1/components", headers=auth, json={"name": "A"})).json()
    b = (await client.post("/api/v1/components", headers=auth, json={"name": "B"})).json()
    fan_a, fan_all = WebhookReceiver(), WebhookReceiver()
    async with serve_app(fan_a.app()) as url_a, serve_app(fan_all.app()) as url_all:
        response = await client.post(
            "/api/v1/subscribers",
            headers=auth,
            json={"channel": "webhook", "address": f"{url_a}/hook", "confirmed": True, "components": [a["id"]]},
        )
        assert response.status_code == 201
        await subscribe_webhook(client, auth, f"{url_all}/hook")
        await open_incident(client, auth, components={b["id"]: "major_outage"})
        await open_incident(client, auth, title="A down", components={a["id"]: "partial_outage"})
        await open_incident(client, auth, title="Everything")  # page-wide: no components
        await run_worker(settings)
    titles_a = sorted(json.loads(r["body"])["data"]["incident"]["name"] for r in fan_a.received)
    titles_all = sorted(json.loads(r["body"])["data"]["incident"]["name"] for r in fan_all.received)
    assert titles_a == ["A down", "Everything"]
    assert titles_all == ["A down", "API errors", "Everything"]


async def test_component_change_with_notify_reaches_subscribers(client, auth, settings) -> None:
    component = (await client.post("/api/v1/components", headers=auth, json={"name": "Search"})).json()
    receiver = WebhookReceiver()
    async with serve_app(receiver.app()) as base:
        receiver.secret = (await subscribe_webhook(client, auth, f"{base}/hook"))["secret"]
        quiet = await client.patch(
            f"/api/v1/components/{component['id']}", headers=auth, json={"status": "degraded_performance"}
        )
        assert quiet.status_code == 200 and "update_id" not in quiet.json()
        loud = await client.patch(
            f"/api/v1/components/{component['id']}",
            headers=auth,
            json={"status": "major_outage", "notify": True, "message": "Search is down."},
        )
        assert loud.status_code == 200 and loud.json()["status"] == "major_outage"
        await run_worker(settings)
    assert len(receiver.received) == 1
    payload = json.loads(receiver.received[0]["body"])
    assert payload["data"]["incident"]["id"] == loud.json()["incident_id"]
    assert payload["data"]["update"]["body"] == "Search is down."
    assert payload["data"]["components"][0]["new_status"] == "major_outage"
