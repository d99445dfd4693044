"""Two web processes and two workers (real OS processes) on one Redis and one database.

An update posted to web #1 reaches a page open on web #2 within 2 s (its ``/events`` stream
and its cached ``summary.json``), and every one of 200 webhook subscribers gets exactly one
message although two workers share the batches.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcaster.delivery import ledger
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from sandbox.serve import serve_app
from tests.conftest import make_settings
from tests.support.web_process import EventStream, WebProcess
from tests.support.worker_process import WorkerProcess

SUBSCRIBERS = 200
LIVE_WITHIN_S = 2.0


class Receiver:
    """Counts messages per subscriber path and per webhook id."""

    def __init__(self) -> None:
        self.per_hook: Counter[str] = Counter()
        self.ids: Counter[str] = Counter()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            await request.body()
            await asyncio.sleep(0.01)  # slow enough that both workers get batches
            self.per_hook[request.path_params["n"]] += 1
            self.ids[request.headers["webhook-id"]] += 1
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook/{n}", hook, methods=["POST"])])


async def until(predicate: Any, timeout_s: float, interval_s: float = 0.05) -> float:
    """Poll ``predicate`` until it is true; the monotonic time it became so."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return time.monotonic()
        await asyncio.sleep(interval_s)
    raise AssertionError(f"not true within {timeout_s} s")


@pytest.mark.slow
async def test_two_webs_two_workers(database_url: str, clean_database: None, tmp_path: Path) -> None:
    settings = make_settings(database_url, batch_size=10, max_jobs=2, relay_interval_s=1, log_level="DEBUG")
    runtime = Runtime.build(settings)
    receiver = Receiver()
    webs = [WebProcess(settings, tmp_path / f"web{i}.log") for i in (1, 2)]
    workers = [WorkerProcess(settings, tmp_path / f"worker{i}.log") for i in (1, 2)]
    try:
        async with serve_app(receiver.app()) as base:
            async with runtime.engine.begin() as conn:
                token = await create_token(conn, "scale-out")
                for n in range(SUBSCRIBERS):
                    await upsert_subscriber(
                        conn,
                        SubscriberIn(channel="webhook", address=f"{base}/hook/{n}", confirmed=True),
                        allow_private_webhooks=True,
                    )
            for process in (*webs, *workers):
                process.start()
            await asyncio.gather(*(web.wait_healthy() for web in webs))
            web1, web2 = webs

            async with httpx.AsyncClient(timeout=10) as client, EventStream(web2.url).open() as stream:
                before = (await client.get(f"{web2.url}/api/v2/summary.json")).json()
                assert before["incidents"] == []
                posted_at = time.monotonic()
                response = await client.post(
                    f"{web1.url}/api/v1/incidents",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "title": "Checkout is failing",
                        "status": "investigating",
                        "impact": "major",
                        "message": "We are investigating failed payments.",
                        "channels": ["webhook", "status_page"],
                    },
                )  # public: on the page and its stream
                assert response.status_code == 201, response.text
                incident = response.json()
                update_id = incident["update"]["id"]

                # live on web #2: the event stream, then the page data it re-fetches
                event_at = await stream.wait_for("update", LIVE_WITHIN_S, update_id=update_id)
                assert event_at - posted_at < LIVE_WITHIN_S

                async def shown_on_web2() -> bool:
                    summary = (await client.get(f"{web2.url}/api/v2/summary.json")).json()
                    return any(i["id"] == incident["id"] for i in summary["incidents"])

                shown_at = await until(shown_on_web2, LIVE_WITHIN_S)
                assert shown_at - posted_at < LIVE_WITHIN_S
                page = await client.get(f"{web2.url}/")
                assert "Checkout is failing" in page.text

            async def all_sent() -> bool:
                async with runtime.engine.connect() as conn:
                    counts = await ledger.delivery_counts(conn, update_id)
                return counts.get("webhook", {}).get("sent") == SUBSCRIBERS

            fanout_started = time.monotonic()
            await until(all_sent, 90, interval_s=0.2)
            fanout_s = time.monotonic() - fanout_started
            await asyncio.sleep(2.5)  # two more relay rounds on each worker: nothing may be sent again
    finally:
        for process in (*workers, *webs):
            process.stop()
        pool = await runtime.queue.pool()
        await pool.delete(settings.queue_name, f"{settings.queue_name}:metrics")
        await runtime.aclose()

    assert len(receiver.per_hook) == SUBSCRIBERS
    assert set(receiver.per_hook.values()) == {1}, "a subscriber got a duplicate"
    assert set(receiver.ids.values()) == {1} and len(receiver.ids) == SUBSCRIBERS
    batches = [sum("batch " in line for line in w.log_path.read_text().splitlines()) for w in workers]
    assert all(n > 0 for n in batches), f"both workers must have sent batches: {batches}"
    print(
        f"web #2 heard the update after {event_at - posted_at:.3f} s, showed it after "
        f"{shown_at - posted_at:.3f} s; all sent {fanout_s:.1f} s later; batch log lines per worker: {batches}"
    )
