"""Dead letters: permanently failed rows are listed, and a replay (API or CLI) sends them again."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx

from broadcaster.runtime import Runtime
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from tests.conftest import run_worker
from tests.support.worker_process import settings_env

CLI = [sys.executable, "-m", "broadcaster.cli"]


async def _failed_update(client: httpx.AsyncClient, auth: dict[str, str], settings, url: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "webhook", "address": url, "confirmed": True}
    )
    secret = response.json()["secret"]
    incident = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={"title": "Outage", "status": "investigating", "message": "x", "channels": ["webhook"]},
    )
    await run_worker(settings)
    return str(incident.json()["update"]["id"]), str(secret)


async def test_dead_letters_listed_and_replayed_by_api(client, auth, settings, runtime: Runtime) -> None:
    receiver = WebhookReceiver(script=[410])  # gone once: permanent failure
    async with serve_app(receiver.app()) as base:
        update_id, receiver.secret = await _failed_update(client, auth, settings, f"{base}/hook")
        dead = (await client.get("/api/v1/deadletter", headers=auth)).json()
        assert dead["total"] == 1
        assert dead["groups"] == [{"update_id": update_id, "channel": "webhook", "failed": 1}]
        assert "410" in dead["deliveries"][0]["last_error"]
        assert (await client.get("/api/v1/deadletter", headers=auth, params={"channel": "email"})).json()["total"] == 0

        retry = await client.post(
            f"/api/v1/updates/{update_id}/deliveries/retry", headers=auth, json={"channel": "webhook"}
        )
        assert retry.status_code == 202, retry.text
        assert retry.json() == {"reset": 1, "batches": 1}
        await run_worker(settings)
    assert len(receiver.received) == 1 and receiver.verified == 1
    assert (await client.get("/api/v1/deadletter", headers=auth)).json()["total"] == 0
    counts = (await client.get(f"/api/v1/updates/{update_id}/deliveries", headers=auth)).json()
    assert counts["webhook"] == {"pending": 0, "sent": 1, "failed": 0, "total": 1}
    # Nothing failed any more: a second replay resets nothing and sends nothing.
    again = await client.post(
        f"/api/v1/updates/{update_id}/deliveries/retry", headers=auth, json={"channel": "webhook"}
    )
    assert again.json() == {"reset": 0, "batches": 0}


async def test_retry_endpoint_validates(client, auth) -> None:
    assert (
        await client.post("/api/v1/updates/nope/deliveries/retry", headers=auth, json={"channel": "webhook"})
    ).status_code == 404
    assert (await client.get("/api/v1/deadletter")).status_code == 401


async def test_cli_replay(client, auth, settings, runtime: Runtime) -> None:
    receiver = WebhookReceiver(script=[400])
    async with serve_app(receiver.app()) as base:
        update_id, receiver.secret = await _failed_update(client, auth, settings, f"{base}/hook")
        env = settings_env(settings)
        listed = await asyncio.to_thread(
            subprocess.run,
            [*CLI, "replay", "--update", update_id, "--channel", "webhook", "--list"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert "1 failed deliveries" in listed.stdout and "HTTP 400" in listed.stdout
        done = await asyncio.to_thread(
            subprocess.run,
            [*CLI, "replay", "--update", update_id, "--channel", "webhook"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert f"reset 1 failed deliveries of update {update_id} on webhook; 1 batches enqueued" in done.stdout
        await run_worker(settings)
    assert len(receiver.received) == 1
