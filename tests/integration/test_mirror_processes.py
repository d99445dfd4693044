"""The mirror with two web processes and two workers (real OS processes), then with none of them.

Acceptance 1 and 4 of issue 25: an update posted to either web process is in the bucket within 5 s,
pushed exactly once (each changed object PUT once, in the S3 server's request log; the web
processes push nothing), and a second update sends only the objects it changed. Acceptance 2:
with every web process and worker stopped and the database out of reach, the bucket served as a
static website still shows the last update and its banner time, every link between its pages
works, and a Statuspage client reads its ``api/v2/summary.json`` and follows its links.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import re
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import select

from broadcaster.db import deliveries
from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from tests.conftest import backend, make_settings
from tests.support.posting import post_body
from tests.support.s3 import REGION, LocalS3, aws_environment, serve_bucket
from tests.support.tcp_proxy import TcpProxy
from tests.support.web_process import WebProcess
from tests.support.worker_process import WorkerProcess

WITHIN_S = 5.0
LINK = re.compile(r'(?:href|src)="([^"#]+)(?:#[^"]*)?"')


async def until(check, timeout_s: float = WITHIN_S) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


async def crawl(base: str, client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """Every page reachable from ``base/`` by the mirror's own (relative) links, fetched once."""
    seen: dict[str, httpx.Response] = {}
    todo = [f"{base}/"]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        response = seen[url] = await client.get(url)
        if not response.headers["content-type"].startswith("text/html"):
            continue
        for link in LINK.findall(response.text):
            target = urljoin(url, link)
            if target.startswith(base) and "://" not in link and not link.startswith("data:"):
                todo.append(target)
    return seen


@pytest.mark.slow
async def test_one_push_per_update_across_processes_and_the_copy_outlives_them(
    database_url: str, clean_database: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_environment(monkeypatch)
    s3 = LocalS3()
    s3.start()
    bucket = s3.bucket()
    proxy = None
    url = database_url
    if backend() == "postgres":  # the database is "stopped" by cutting the processes' way to it
        parts = urlsplit(database_url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.start()
        url = database_url.replace(f":{parts.port or 5432}/", f":{proxy.port}/")
    settings = make_settings(
        url, mirror_s3_bucket=bucket, mirror_s3_endpoint_url=s3.url, mirror_s3_region=REGION, max_jobs=2
    )
    runtime = Runtime.build(settings)
    webs = [WebProcess(settings, tmp_path / f"web{i}.log") for i in (1, 2)]
    workers = [WorkerProcess(settings, tmp_path / f"worker{i}.log") for i in (1, 2)]
    moved: Path | None = None
    closed = False
    try:
        for n in range(3):  # some history, so that an update does not change every page
            old, _ = await post_body(runtime, {"title": f"Old incident {n}", "status": "resolved", "message": "Fixed."})
        async with runtime.engine.begin() as conn:
            token = await create_token(conn, "mirror")
        for process in (*webs, *workers):
            process.start()
        await asyncio.gather(*(web.wait_healthy() for web in webs))

        async def rows() -> list[dict[str, object]]:
            async with runtime.engine.connect() as conn:
                query = select(deliveries).where(deliveries.c.channel == "mirror")
                return [dict(r) for r in (await conn.execute(query)).mappings()]

        async def settled(count: int) -> bool:
            found = await rows()
            return len(found) == count and all(r["state"] == "sent" for r in found)

        await until(lambda: settled(3), 30)  # the seed's three updates, pushed once the workers run
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(timeout=10) as client:
            pushes: list[list[str]] = []
            incident_id = ""
            for n, (web, body) in enumerate(
                [
                    (
                        webs[0],
                        {
                            "title": "Checkout errors",
                            "status": "investigating",
                            "impact": "major",
                            "message": "Some card payments fail.",
                        },
                    ),
                    (webs[1], {"status": "identified", "message": "A bad deploy; rolling it back."}),
                ]
            ):
                mark = len(s3.requests)
                path = "/api/v1/incidents" if n == 0 else f"/api/v1/incidents/{incident_id}/updates"
                posted = await client.post(f"{web.url}{path}", headers=headers, json=body)
                assert posted.status_code == 201, posted.text
                incident_id = incident_id or posted.json()["id"]

                async def on_bucket(text: str = str(body["message"])) -> bool:
                    index = await asyncio.to_thread(s3.get, bucket, "index.html")
                    summary = await asyncio.to_thread(s3.get, bucket, "api/v2/summary.json")
                    return bool(index and summary and text.encode() in index[0] and text.encode() in summary[0])

                took_s = await until(on_bucket)
                await until(lambda n=n: settled(4 + n))
                await asyncio.sleep(1.0)  # anything else pushing (a web process, a second worker) would show now
                puts = s3.puts(bucket, mark)
                pushes.append(puts)
                print(f"\nupdate {n + 1}: on the bucket after {took_s:.2f} s; {len(puts)} PUTs: {sorted(puts)}")
                assert len(puts) == len(set(puts)), "each object once: one push per update"
                assert f"incidents/{incident_id}.html" in puts and "index.html" in puts
            total = len(await asyncio.to_thread(s3.objects, bucket))
            print(f"bucket holds {total} objects; the updates sent {len(pushes[0])} and {len(pushes[1])}")
            assert len(pushes[1]) < total and "incidents/" + old.incident_id + ".html" not in pushes[1]
            assert [r["attempts"] for r in await rows()] == [1] * 5, "one ledger row per update, one attempt each"
            updated = json.loads((await asyncio.to_thread(s3.get, bucket, "api/v2/summary.json") or (b"{}",))[0])
            last_update = updated["incidents"][0]["incident_updates"][0]["body"]

        for web in webs:
            await web.terminate()
        for worker in workers:  # in a thread: the database proxy runs in this loop, and their shutdown uses it
            await asyncio.to_thread(worker.terminate)
        await runtime.aclose()
        closed = True
        if proxy is not None:
            await proxy.cut()
        else:
            path = Path(database_url.removeprefix("sqlite+aiosqlite:///"))
            moved = path.rename(path.with_suffix(".away"))

        async with serve_bucket(s3, bucket) as site, httpx.AsyncClient(timeout=5) as client:
            pages = await crawl(site, client)
            broken = {u: r.status_code for u, r in pages.items() if r.status_code != 200}
            assert not broken, broken
            names = {posixpath.relpath(urlsplit(u).path, "/") for u in pages}
            assert {".", "history.html", f"incidents/{incident_id}.html", "api/v2/summary.json"} <= names, names
            home = pages[f"{site}/"].text
            assert "A bad deploy; rolling it back." in home
            published = re.search(r'This copy was published at <time datetime="([^"]+)">([^<]+)</time>', home)
            assert published and published.group(2).endswith(" UTC"), "the banner says when"
            print(
                f"mirror with nothing running: {len(pages)} pages and files by its links, banner {published.group(2)}"
            )
            # A Statuspage client (statuscheck reads status, components and incidents) pointed at the mirror:
            summary_url = f"{site}/api/v2/summary.json"
            summary = (await client.get(summary_url)).json()
            assert summary["status"]["indicator"] == "major" and summary["status"]["description"]
            incident = summary["incidents"][0]
            assert incident["name"] == "Checkout errors" and incident["incident_updates"][0]["body"] == last_update
            shortlink = await client.get(urljoin(summary_url, incident["shortlink"]))
            assert shortlink.status_code == 200 and "A bad deploy" in shortlink.text
            old_link = await client.get(f"{site}/incidents/{incident_id}")  # a link sent before the outage
            assert old_link.status_code == 200 and old_link.headers["content-type"].startswith("text/html")
    finally:
        for process in (*webs, *workers):
            process.stop()
        if not closed:
            await runtime.aclose()
        if moved is not None:
            moved.rename(moved.with_suffix(".db"))
        if proxy is not None:
            await proxy.stop()
        s3.stop()
