"""Subscribers out and in as CSV: the CLI round trip into a fresh database, bad rows by line number (nothing
imported), ``GET /api/v1/subscribers.csv`` and the console's download and upload with a preview."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from broadcaster.db import components, make_engine, subscriber_components, subscribers
from broadcaster.db.migrate import upgrade_async
from broadcaster.domain.subscribers import unsubscribe, upsert_subscriber
from broadcaster.domain.tokens import create_token
from broadcaster.importing.progress import Silent
from broadcaster.importing.sources import from_statuspage
from broadcaster.importing.writer import write_bundle
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from sandbox.providers.statuspage import FakeStatuspage
from sandbox.serve import serve_app
from status_page.console.subscribers_io import IMPORT_PATH, MAX_UPLOAD_BYTES
from tests.conftest import make_settings
from tests.integration.test_console import login
from tests.support.importing import run_cli

Row = tuple[str, str, tuple[str, ...], bool, str]


async def seeded(settings: Any, *, subscribers_count: int) -> None:
    """The sample Statuspage page (components and, if asked, subscribers) imported into ``settings``' database."""
    fake = FakeStatuspage.sample(subscribers=subscribers_count, incidents=2, maintenances=0)
    async with serve_app(fake.app) as api:
        bundle = await from_statuspage(fake.page_id, fake.api_key, Silent(), base_url=api)
    engine = make_engine(settings.database_url)
    try:
        await write_bundle(engine, bundle, settings, actor="cli:test")
    finally:
        await engine.dispose()


async def everyone(database_url: str) -> set[Row]:
    """(channel, address, component names, confirmed, created_at) of every active real subscriber."""
    engine = make_engine(database_url, pool=False)
    async with engine.connect() as conn:
        names = dict((await conn.execute(select(components.c.id, components.c.name))).all())
        links: dict[str, list[str]] = {}
        for subscriber_id, component_id in await conn.execute(select(subscriber_components)):
            links.setdefault(subscriber_id, []).append(names[component_id])
        query = select(subscribers).where(subscribers.c.drill.is_(False), subscribers.c.unsubscribed_at.is_(None))
        rows = (await conn.execute(query)).mappings().all()
    await engine.dispose()
    return {
        (
            r["channel"],
            r["address"],
            tuple(sorted(links.get(r["id"], []))),
            bool(r["confirmed"]),
            r["created_at"].isoformat(),
        )
        for r in rows
    }


async def fresh_database(tmp_path: Path, name: str) -> Any:
    url = f"sqlite+aiosqlite:///{tmp_path / name}"
    await upgrade_async(url)
    return make_settings(url)


async def test_export_then_import_into_a_fresh_database_round_trips_every_subscriber(
    settings: Any, runtime: Runtime, tmp_path: Path
) -> None:
    await seeded(settings, subscribers_count=120)
    async with runtime.engine.begin() as conn:  # one not confirmed, one who left (not exported)
        await upsert_subscriber(
            conn, SubscriberIn(channel="email", address="maybe@example.org"), allow_private_webhooks=True
        )
        gone, _ = await upsert_subscriber(
            conn, SubscriberIn(channel="email", address="gone@example.org", confirmed=True), allow_private_webhooks=True
        )
        await unsubscribe(conn, gone["id"])
    exported = tmp_path / "subscribers.csv"
    result = await run_cli(settings, "subscribers", "export", str(exported))
    assert result.returncode == 0, result.stderr
    lines = exported.read_text().splitlines()
    assert lines[0] == "channel,address,components,language,confirmed,created_at" and len(lines) == 1 + 121
    assert "gone@example.org" not in exported.read_text()

    fresh = await fresh_database(tmp_path, "fresh.db")
    await seeded(fresh, subscribers_count=0)  # the same components, with other ids
    result = await run_cli(fresh, "subscribers", "import", str(exported))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 121 rows: 121 create, 0 update, 0 unchanged, 0 kept unsubscribed"
    copied = await everyone(fresh.database_url)
    assert len(copied) == 121 and copied == await everyone(settings.database_url)
    assert not next(r for r in copied if r[1] == "maybe@example.org")[3]  # still not confirmed
    again = await run_cli(fresh, "subscribers", "import", str(exported))
    assert "0 create, 0 update, 121 unchanged" in again.stdout


async def test_a_file_with_three_bad_rows_names_their_lines_and_imports_nothing(settings: Any, tmp_path: Path) -> None:
    await seeded(settings, subscribers_count=0)
    rows = [
        "channel,address,components,language,confirmed,created_at",
        "email,ok1@example.org,API,,true,2025-01-02T03:04:05Z",
        "email,not-an-address,,,true,",
        'email,ok2@example.org,"API;Platform - CDN",en,yes,',
        "sms,+14155550123,No such component,,true,",
        "webhook,https://hooks.example.org/x,,,maybe,",
        "sms,+14155550124,,,false,2025-01-02",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n")
    result = await run_cli(settings, "subscribers", "import", str(bad), "--confirmed")
    assert result.returncode == 2
    named = dict(re.findall(r"^  line (\d+): (.*)$", result.stderr, re.M))
    assert sorted(named) == ["3", "5", "6"], result.stderr
    assert "address" in named["3"] and "No such component" in named["5"] and "confirmed" in named["6"]
    assert "3 bad rows; nothing was imported" in result.stderr
    engine = make_engine(settings.database_url, pool=False)
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(subscribers))).scalar() == 0
    await engine.dispose()

    good = [line for n, line in enumerate(rows, start=1) if n not in (3, 5, 6)] + ["email,edge@example.org,Edge,,,"]
    bad.write_text("\n".join(good) + "\n")
    result = await run_cli(settings, "subscribers", "import", str(bad), "--confirmed")
    assert result.returncode == 0 and "4 create" in result.stdout, result.stderr
    chosen = {address: names for _, address, names, _, _ in await everyone(settings.database_url)}
    assert chosen["ok2@example.org"] == ("API", "CDN") and chosen["edge@example.org"] == ("DNS", "Dashboard")


async def test_the_api_and_the_console_download_and_upload(
    settings: Any, runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await seeded(settings, subscribers_count=30)
    response = await client.get("/api/v1/subscribers.csv", headers=auth)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == 30 and {r["channel"] for r in table} == {"email", "sms", "webhook"}
    async with runtime.engine.begin() as conn:
        viewer = await create_token(conn, "viewer", role="viewer")
    assert (
        await client.get("/api/v1/subscribers.csv", headers={"Authorization": f"Bearer {viewer}"})
    ).status_code == 403
    assert (await client.get("/api/v1/subscribers.csv")).status_code == 401

    csrf = await login(client, runtime, "admin", "admin")
    page = await client.get("/console/subscribers", headers={"accept": "text/html"})
    assert page.status_code == 200 and "Download every active subscriber" in page.text
    download = await client.get("/console/subscribers/export.csv")
    assert download.text == response.text

    known = next(r for r in table if r["channel"] == "email")
    upload = f"channel,address,components\nemail,new@example.org,API\nemail,{known['address']},{known['components']}\n"
    files = {"file": ("more.csv", upload.encode(), "text/csv")}
    preview = await client.post(
        "/console/subscribers/import", data={"csrf_token": csrf, "step": "preview", "confirmed": "1"}, files=files
    )
    assert preview.status_code == 200, preview.text
    assert "1 new, 0 updated, 1 unchanged" in preview.text
    async with runtime.engine.connect() as conn:  # a preview keeps nothing
        assert (await conn.execute(select(func.count()).select_from(subscribers))).scalar() == 30
    carried = re.search(r'<textarea name="csv" hidden aria-hidden="true">(.*?)</textarea>', preview.text, re.S)
    assert carried
    applied = await client.post(
        "/console/subscribers/import",
        data={"csrf_token": csrf, "step": "apply", "confirmed": "1", "csv": upload},
        files={"none": ("", b"", "application/octet-stream")},
    )
    assert applied.status_code == 303 and "Imported" in applied.headers["location"]
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(subscribers).where(subscribers.c.address == "new@example.org"))).one()
    assert row.confirmed

    bad = {"file": ("bad.csv", b"channel,address\nemail,nope\n", "text/csv")}
    refused = await client.post("/console/subscribers/import", data={"csrf_token": csrf}, files=bad)
    assert refused.status_code == 422 and "Line 2:" in refused.text and "nothing will be imported" in refused.text
    no_csrf = await client.post("/console/subscribers/import", data={}, files=bad)
    assert no_csrf.status_code == 403


async def test_the_console_takes_a_file_over_the_body_cap_up_to_its_own(
    settings: Any, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    csrf = await login(client, runtime, "admin", "admin")
    rows = "".join(f"email,a-rather-long-mailbox-name-number-{n:05d}@example.org,,\n" for n in range(1200))
    big = f"channel,address,components,language\n{rows}".encode()
    assert settings.max_body_bytes < len(big) < MAX_UPLOAD_BYTES
    preview = await client.post(IMPORT_PATH, data={"csrf_token": csrf}, files={"file": ("big.csv", big, "text/csv")})
    assert preview.status_code == 200 and "1200 new, 0 updated, 0 unchanged" in preview.text
    over = {"file": ("over.csv", b"x" * (MAX_UPLOAD_BYTES + 1), "text/csv")}
    too_big = await client.post(IMPORT_PATH, data={"csrf_token": csrf}, files=over)
    assert too_big.status_code == 422 and too_big.json()["error"]["fields"]["file"].startswith("at most")
    huge = {"file": ("huge.csv", b"x" * (MAX_UPLOAD_BYTES + settings.max_body_bytes + 1), "text/csv")}
    assert (await client.post(IMPORT_PATH, data={"csrf_token": csrf}, files=huge)).status_code == 413
