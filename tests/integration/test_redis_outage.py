"""Redis down while an update is posted: the POST still answers 201, and nothing is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from broadcaster.runtime import Runtime
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from status_page.app import create_app
from tests.conftest import make_settings, run_worker
from tests.support.redis_server import RedisServer


async def test_post_while_redis_is_down_is_delivered_by_the_relay(
    database_url: str, clean_database: None, tmp_path: Path
) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    settings = make_settings(database_url, redis_url=redis_server.url)
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    receivers = [WebhookReceiver() for _ in range(3)]
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
            serve_app(receivers[0].app()) as a,
            serve_app(receivers[1].app()) as b,
            serve_app(receivers[2].app()) as c,
        ):
            async with runtime.engine.begin() as conn:
                from broadcaster.domain.tokens import create_token

                auth = {"Authorization": f"Bearer {await create_token(conn, 't')}"}
            for receiver, base in zip(receivers, (a, b, c), strict=True):
                response = await client.post(
                    "/api/v1/subscribers",
                    headers=auth,
                    json={"channel": "webhook", "address": f"{base}/hook", "confirmed": True},
                )
                receiver.secret = response.json()["secret"]

            redis_server.stop()
            response = await client.post(
                "/api/v1/incidents",
                headers=auth,
                json={
                    "title": "Database failover",
                    "status": "investigating",
                    "message": "Looking into it.",
                    "channels": ["webhook"],
                },
            )
            assert response.status_code == 201, response.text
            assert response.headers.get("x-broadcaster-queued") == "later"
            update_id = response.json()["update"]["id"]
            counts: dict[str, Any] = (await client.get(f"/api/v1/updates/{update_id}/deliveries", headers=auth)).json()
            assert counts == {"webhook": {"pending": 0, "sent": 0, "failed": 0, "total": 0}}

            redis_server.start()  # an empty Redis: the job that was never queued is not there
            await run_worker(settings)  # the relay runs at start-up and re-enqueues the outbox
            counts = (await client.get(f"/api/v1/updates/{update_id}/deliveries", headers=auth)).json()
        assert counts == {"webhook": {"pending": 0, "sent": 3, "failed": 0, "total": 3}}
        assert [len(r.received) for r in receivers] == [1, 1, 1]
        assert all(r.verified == 1 for r in receivers)
    finally:
        await runtime.aclose()
        redis_server.stop()
