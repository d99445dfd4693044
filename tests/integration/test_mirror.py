"""The ``mirror`` channel against a local S3 (moto's server on loopback) and a local directory.

An update reaches the bucket through the worker within 5 s, with the right types; a second update
sends exactly the objects whose content changed (counted in the S3 server's request log); a quiet
component change is pushed without a ledger row; ``broadcaster mirror push`` sends everything;
``/api/v1/channels`` and the preview show the channel; an outage of the bucket is ridden out by
the ledger's retries, and the copy shows the latest update within one retry period once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import deliveries
from broadcaster.delivery.channel import PageCopy
from broadcaster.errors import DeliveryError
from broadcaster.logs import QUIET_LOGGERS
from broadcaster.runtime import Runtime
from tests.conftest import make_settings, run_worker, running_worker
from tests.integration.test_desk import login, make_user
from tests.support.posting import post_body
from tests.support.s3 import REGION, LocalS3, aws_environment
from tests.support.worker_process import settings_env

WITHIN_S = 5.0
BANNER_TIME = re.compile(rb'published at <time datetime="[^"]*">[^<]*</time>')


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    server = LocalS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> str:
    aws_environment(monkeypatch)
    return s3.bucket()


def mirror_settings(database_url: str, s3: LocalS3, bucket: str, **overrides: Any) -> Settings:
    return make_settings(
        database_url, mirror_s3_bucket=bucket, mirror_s3_endpoint_url=s3.url, mirror_s3_region=REGION, **overrides
    )


@pytest.fixture
def settings(database_url: str, clean_database: None, s3: LocalS3, bucket: str) -> Settings:
    return mirror_settings(database_url, s3, bucket)


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = WITHIN_S) -> float:
    """Seconds until ``check`` held (polled every 50 ms); fails after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


def on_bucket(s3: LocalS3, bucket: str, key: str, text: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        found = await asyncio.to_thread(s3.get, bucket, key)
        return found is not None and text.encode() in found[0]

    return check


def masked(objects: dict[str, tuple[bytes, str, str]]) -> dict[str, bytes]:
    """Bodies with the banner's time left out: what "changed" means for the mirror."""
    return {key: BANNER_TIME.sub(b"published at T", body) for key, (body, _, _) in objects.items()}


async def mirror_rows(runtime: Runtime) -> list[dict[str, Any]]:
    async with runtime.engine.connect() as conn:
        query = select(deliveries).where(deliveries.c.channel == "mirror").order_by(deliveries.c.id)
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def test_an_update_reaches_the_bucket_and_the_next_sends_only_what_changed(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, runtime: Runtime, s3: LocalS3, bucket: str
) -> None:
    component = (await client.post("/api/v1/components", headers=auth, json={"name": "Checkout"})).json()
    await run_worker(settings)  # the push the new component asked for, out of the way of the counts below
    async with running_worker(settings):
        created = await client.post(
            "/api/v1/incidents",
            headers=auth,
            json={
                "title": "Payments failing",
                "status": "investigating",
                "impact": "major",
                "message": "Card payments fail at checkout.",
                "components": {component["id"]: "major_outage"},
            },
        )
        assert created.status_code == 201, created.text
        incident_id = created.json()["id"]
        took_s = await until(on_bucket(s3, bucket, "api/v2/summary.json", "Card payments fail at checkout."))
        await until(on_bucket(s3, bucket, "index.html", "Payments failing"))
        print(f"\nfirst update on the bucket (index.html and api/v2/summary.json) {took_s:.2f} s after the post")

        async def pushed(count: int) -> bool:
            rows = await mirror_rows(runtime)
            return len(rows) == count and all(r["state"] == "sent" for r in rows)

        await until(lambda: pushed(1))  # the whole push has ended
        objects = await asyncio.to_thread(s3.objects, bucket)
        assert objects["index.html"][1:] == ("text/html; charset=utf-8", "public, max-age=60")
        assert objects["api/v2/summary.json"][1:] == ("application/json", "public, max-age=60")
        assert objects[f"incidents/{incident_id}"][1] == "text/html; charset=utf-8", "the main site's path, as HTML"
        assert objects["history.atom"][1] == "application/atom+xml; charset=utf-8"
        css = next(key for key in objects if key.startswith("assets/status."))
        assert objects[css][1:] == ("text/css; charset=utf-8", "public, max-age=31536000, immutable")
        assert b"This copy was published at <time" in objects["index.html"][0]

        before, mark = masked(objects), len(s3.requests)
        follow_up = await client.post(
            f"/api/v1/incidents/{incident_id}/updates",
            headers=auth,
            json={"status": "monitoring", "message": "A fix is deployed; payments succeed again."},
        )
        assert follow_up.status_code == 201, follow_up.text
        await until(lambda: pushed(2))
    after = masked(await asyncio.to_thread(s3.objects, bucket))
    puts = s3.puts(bucket, mark)
    changed = sorted(key for key in after if before.get(key) != after[key])
    print(f"second update: {len(puts)} PUTs of {len(after)} objects: {sorted(puts)}")
    assert sorted(puts) == changed, "exactly the objects whose content changed, each once"
    assert f"incidents/{incident_id}.html" in puts and "api/v2/summary.json" in puts and "index.html" in puts
    assert not [key for key in puts if key.startswith("assets/")] and len(puts) < len(after)
    rows = await mirror_rows(runtime)
    assert [r["attempts"] for r in rows] == [1, 1]
    assert rows[1]["provider_id"] == f"{len(puts)} objects sent"

    channels = (await client.get("/api/v1/channels", headers=auth)).json()["mirror"]
    assert channels["enabled"] is True and channels["current_update"]["update_id"] == follow_up.json()["id"]
    copy = channels["copy"]
    assert copy["last_success_at"] is not None and copy["lag_s"] == 0.0
    assert copy["targets"][0]["target"].startswith(f"s3://{bucket}/") and copy["targets"][0]["objects"] == len(after)
    preview = await client.post(
        "/api/v1/preview", headers=auth, json={"incident_id": incident_id, "status": "resolved", "message": "Done."}
    )
    assert preview.json()["mirror"]["pages"][1] == f"incidents/{incident_id}.html"
    await make_user(runtime, "viewer", "viewer")
    await login(client, "viewer")
    console = (await client.get("/console/channels")).text
    row = re.search(r'<tr class="" data-channel="mirror">.*?</tr>', console, re.S)
    assert row and f"s3://{bucket}/" in row.group(0) and "pushed 20" in row.group(0), console


async def test_a_quiet_component_change_and_the_brand_are_pushed_without_an_update(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, runtime: Runtime, s3: LocalS3, bucket: str
) -> None:
    component = (await client.post("/api/v1/components", headers=auth, json={"name": "Search"})).json()
    async with running_worker(settings):
        await until(on_bucket(s3, bucket, "api/v2/components.json", '"name":"Search"'))
        patched = await client.patch(
            f"/api/v1/components/{component['id']}", headers=auth, json={"status": "degraded_performance"}
        )
        assert patched.status_code == 200, patched.text
        took_s = await until(on_bucket(s3, bucket, "api/v2/components.json", '"status":"degraded_performance"'))
        branded = await client.patch("/api/v1/page", headers=auth, json={"name": "ACME Status"})
        assert branded.status_code == 200, branded.text
        brand_s = await until(on_bucket(s3, bucket, "index.html", "<title>ACME Status</title>"))
    print(f"\nquiet component change on the bucket after {took_s:.2f} s, a new page name after {brand_s:.2f} s")
    assert await mirror_rows(runtime) == [], "no update was posted, so the ledger has no row for it"


async def test_mirror_push_sends_every_object_and_a_push_restores_what_went_missing(
    settings: Settings, runtime: Runtime, s3: LocalS3, bucket: str
) -> None:
    body = {"title": "Slow search", "status": "identified", "message": "Index rebuild.", "channels": ["status_page"]}
    posted, _ = await post_body(runtime, body)
    assert posted.channels == ("status_page", "mirror"), "the page's copy goes wherever the page goes"
    command = [sys.executable, "-m", "broadcaster.cli", "mirror"]
    env = settings_env(settings)
    pushed = await asyncio.to_thread(subprocess.run, [*command, "push"], env=env, capture_output=True, timeout=60)
    assert pushed.returncode == 0, pushed.stderr.decode()
    objects = await asyncio.to_thread(s3.objects, bucket)
    assert sorted(s3.puts(bucket)) == sorted(objects) and "Slow search" in objects["index.html"][0].decode()
    assert f"{len(objects)} of {len(objects)} objects sent" in pushed.stdout.decode()
    mark = len(s3.requests)
    again = await asyncio.to_thread(subprocess.run, [*command, "push"], env=env, capture_output=True, timeout=60)
    assert again.returncode == 0 and len(s3.puts(bucket, mark)) == len(objects), "full: changed or not"
    status = await asyncio.to_thread(subprocess.run, [*command, "status"], env=env, capture_output=True, timeout=60)
    assert b'"lag_s": 0.0' in status.stdout and b'"last_success_at": "20' in status.stdout

    await asyncio.to_thread(s3.client().delete_object, Bucket=bucket, Key="history.html")  # gone from the bucket
    mark = len(s3.requests)
    mirror = runtime.registry.get("mirror")
    assert isinstance(mirror, PageCopy)
    assert "1 of" in await mirror.refresh() and s3.puts(bucket, mark) == ["history.html"], "what went missing, only"


async def test_a_bucket_outage_is_retried_and_the_copy_catches_up(
    database_url: str, clean_database: None, s3: LocalS3, bucket: str
) -> None:
    """Acceptance 3, shortened: the bucket refuses (503 SlowDown) for OUTAGE_S while two updates are
    posted; once it answers, the copy shows the second within one retry period."""
    outage_s, retry_period_s = 4.0, 2.0
    settings = mirror_settings(
        database_url, s3, bucket, retry_base_s=0.5, retry_max_s=retry_period_s, max_attempts=30, circuit_cooldown_s=2
    )
    runtime = Runtime.build(settings)
    try:
        async with running_worker(settings):
            posted, _ = await post_body(
                runtime, {"title": "Database failover", "status": "investigating", "message": "A primary is down."}
            )
            await until(on_bucket(s3, bucket, "index.html", "Database failover"))

            async def all_sent() -> bool:
                return all(r["state"] == "sent" for r in await mirror_rows(runtime))

            await until(all_sent)  # the first push has ended: the outage hits the two updates' pushes
            s3.refusing, mark = True, len(s3.requests)
            follow = {"status": "identified", "message": "Failing over to the replica."}
            first, _ = await post_body(runtime, follow, posted.incident_id)
            second, _ = await post_body(
                runtime, {"status": "monitoring", "message": "The replica serves traffic."}, posted.incident_id
            )
            ends = time.monotonic() + outage_s
            while time.monotonic() < ends:  # meanwhile nothing is taken for sent
                assert [r["state"] for r in await mirror_rows(runtime)][1:] != ["sent", "sent"]
                await asyncio.sleep(0.2)
            s3.refusing = False
            took_s = await until(on_bucket(s3, bucket, "api/v2/summary.json", "The replica serves traffic."), 10)
            refused = sum(1 for r in s3.requests[mark:] if r.status == 503)
            print(f"\nbucket refused {refused} requests in {outage_s} s; second update on it {took_s:.2f} s after")
            assert took_s <= retry_period_s + 1.0, "within one retry period (and the push)"
            await until(all_sent)
        rows = {r["update_id"]: r for r in await mirror_rows(runtime)}
        attempts = [rows[u.update_id]["attempts"] for u in (first, second)]
        print(f"ledger: the first update's row took {attempts[0]} attempts, the second's {attempts[1]}")
        assert rows[first.update_id]["attempts"] >= 2, "the ledger shows the retries"
        assert refused > 0
    finally:
        await runtime.aclose()


async def test_a_directory_target_and_the_old_static_export_dir(
    database_url: str, clean_database: None, tmp_path: Path
) -> None:
    """``BROADCASTER_STATIC_EXPORT_DIR`` still works: it is now the mirror's directory, written by the worker."""
    settings = make_settings(database_url, static_export_dir=tmp_path / "mirror")
    runtime = Runtime.build(settings)
    try:
        assert "mirror" in runtime.registry.enabled
        posted, _ = await post_body(runtime, {"title": "Login slow", "status": "investigating", "message": "Looking."})
        assert not (tmp_path / "mirror").exists(), "nothing before a worker pushes"
        async with running_worker(settings):

            async def written() -> bool:
                return (tmp_path / "mirror" / "index.html").is_file()

            await until(written)
        alias = (tmp_path / "mirror" / "incidents" / posted.incident_id / "index.html").read_text()
        # links made relative to the alias's folder (the page's CSS is inline: no stylesheet link)
        assert 'href="../../history.html"' in alias and 'href="../../history.atom"' in alias
        index = (tmp_path / "mirror" / "index.html").read_text()
        assert 'action="http://status.test/subscribe"' in index and "signing up cannot work just now" in index
        assert not list((tmp_path / "mirror").rglob("*.tmp"))
    finally:
        await runtime.aclose()


async def test_no_aws_secret_in_the_logs_even_at_debug(
    settings: Settings, runtime: Runtime, s3: LocalS3, bucket: str, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    """As a deployment at DEBUG logs (the quiet loggers from WARNING up): botocore would print the
    signed headers, a session token among them, at DEBUG."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key-MARKER-0123456789")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-MARKER-0123456789")
    for name in QUIET_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    caplog.set_level(logging.DEBUG)
    await post_body(runtime, {"title": "Quiet logs", "status": "investigating", "message": "Checking."})
    mirror = runtime.registry.get("mirror")
    assert isinstance(mirror, PageCopy)
    await mirror.refresh()
    s3.refusing = True
    try:
        with pytest.raises(DeliveryError, match="503 SlowDown"):
            await mirror.refresh(full=True)
    finally:
        s3.refusing = False
    assert "mirror push to s3://" in caplog.text, "the failure is logged"
    assert "MARKER" not in caplog.text
