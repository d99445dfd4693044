"""``/metrics`` after a real fan-out: parses, and the delivery figures are the ledger's."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from broadcaster.db import deliveries
from broadcaster.logs import make_handler
from broadcaster.runtime import Runtime
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from tests.conftest import run_worker
from tests.integration.test_fanout_webhooks import open_incident, subscribe_webhook

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def by_name(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


async def ledger(runtime: Runtime) -> dict[tuple[str, str], int]:
    query = select(deliveries.c.channel, deliveries.c.state, func.count()).group_by(
        deliveries.c.channel, deliveries.c.state
    )
    async with runtime.engine.connect() as conn:
        return {(ch, st): n for ch, st, n in await conn.execute(query)}


async def fan_out(client: httpx.AsyncClient, auth: dict[str, str], settings: Any, ok: int, gone: int) -> str:
    good = WebhookReceiver()
    dead = WebhookReceiver(script=[410] * gone)
    async with serve_app(good.app()) as good_url, serve_app(dead.app()) as dead_url:
        for n in range(ok):
            await subscribe_webhook(client, auth, f"{good_url}/hook?n={n}")
        for n in range(gone):
            await subscribe_webhook(client, auth, f"{dead_url}/hook?n={n}")
        incident = await open_incident(client, auth, channels=["webhook", "status_page"])
        await run_worker(settings)
    assert len(good.received) == ok
    return str(incident["update"]["id"])


async def test_delivery_counters_equal_the_ledger(client, auth, settings, runtime: Runtime) -> None:
    await fan_out(client, auth, settings, ok=7, gone=2)
    assert (await client.get("/api/v1/incidents", headers=auth)).status_code == 200
    samples = await scrape(client)

    rows = await ledger(runtime)
    assert rows[("webhook", "sent")] == 7 and rows[("webhook", "failed")] == 2
    gauge = by_name(samples, "broadcaster_deliveries")
    for (channel, state), count in rows.items():
        assert gauge[(("channel", channel), ("state", state))] == count
    # nothing reported that the ledger does not hold
    assert sum(gauge.values()) == sum(rows.values())
    sent = by_name(samples, "broadcaster_deliveries_sent_total")
    assert sent[(("channel", "webhook"),)] == 7
    assert sent[(("channel", "status_page"),)] == rows[("status_page", "sent")] == 1

    # one update: one "post to first delivery" observation per channel that sent something
    first = by_name(samples, "broadcaster_first_delivery_seconds_count")
    assert first[(("channel", "webhook"),)] == 1
    assert first[(("channel", "status_page"),)] == 1
    assert by_name(samples, "broadcaster_first_delivery_seconds_sum")[(("channel", "webhook"),)] >= 0

    assert by_name(samples, "broadcaster_queue_depth")[()] == 0
    assert by_name(samples, "broadcaster_outbox_pending")[()] == 0
    assert by_name(samples, "broadcaster_redis_up")[()] == 1
    jobs = by_name(samples, "broadcaster_job_duration_seconds_count")
    assert jobs[(("function", "fanout"), ("outcome", "complete"))] == 2  # webhook and status_page
    assert jobs[(("function", "deliver_batch"), ("outcome", "complete"))] >= 2
    assert by_name(samples, "broadcaster_job_wait_seconds_count")[(("function", "fanout"),)] == 2

    http = by_name(samples, "broadcaster_http_request_duration_seconds_count")
    assert http[(("method", "POST"), ("route", "/api/v1/incidents"), ("status", "201"))] == 1
    assert http[(("method", "POST"), ("route", "/api/v1/subscribers"), ("status", "201"))] == 9
    assert http[(("method", "GET"), ("route", "/api/v1/incidents"), ("status", "200"))] == 1
    # (the cached hot GETs, / and /api/v2/*.json, are answered by the public fast path before
    # this middleware: see status_page/app.py and docs/scaling.md)


async def test_request_latency_is_labelled_by_route_template(client, auth) -> None:
    await client.get("/api/v1/incidents/doesnotexist", headers=auth)
    await client.get("/no/such/page")
    http = by_name(await scrape(client), "broadcaster_http_request_duration_seconds_count")
    assert http[(("method", "GET"), ("route", "/api/v1/incidents/{incident_id}"), ("status", "404"))] == 1
    assert http[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert not any("doesnotexist" in value for labels in http for _, value in labels)


async def test_json_log_lines_carry_update_and_channel(client, auth, settings) -> None:
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # the batch and fan-out lines are DEBUG chatter
    try:
        update_id = await fan_out(client, auth, settings, ok=3, gone=0)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]  # every line is one JSON object
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    ours = [line for line in lines if line.get("update_id") == update_id]
    batch_lines = [line for line in ours if line["message"].startswith("batch ")]
    assert batch_lines and all(line["channel"] in ("webhook", "status_page") for line in batch_lines)
    assert all(line["job_id"].startswith("deliver:") for line in batch_lines)
    fanned = [line for line in ours if line["message"].startswith("fanned out")]
    assert {line["channel"] for line in fanned} == {"webhook", "status_page"}
    assert all(line["job_id"].startswith("fanout:") for line in fanned)
    finished = [line for line in ours if line["level"] == "info" and " on webhook: " in line["message"]]
    assert [line["message"] for line in finished] == [f"update {update_id} on webhook: 3 sent, 0 failed"], (
        "one INFO line when the update has finished on a channel"
    )
