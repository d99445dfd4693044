"""How to reach us now: PUT /api/v1/page/contact-channels shows a banner on the page, the mirror, the
desk and the v2 JSON, puts one line in email updates (real SMTP, real worker) while it applies, is
audited, and with ``notify`` posts the change through the posting service."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import audit_log
from broadcaster.runtime import Runtime
from sandbox.smtp import RecordingSMTP, recording_smtp
from status_page.public.static_export import export_site
from tests.conftest import make_settings, run_worker
from tests.integration.test_desk import login, make_user

FIELDS = json.loads((Path(__file__).parent.parent / "fixtures" / "statuspage_v2_fields.json").read_text())
JAMMED = [
    {"name": "Phone", "state": "busy", "note": "Lines are jammed; use chat", "url": "tel:+441234567890"},
    {"name": "Chat", "state": "open", "url": "https://acme.example/chat"},
]
ALL_OPEN = [{**c, "state": "open", "note": ""} for c in JAMMED]
LINE = "How to reach us now: Phone: busy (Lines are jammed; use chat); Chat: open."


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
def settings(database_url: str, clean_database: None, smtp: RecordingSMTP) -> Settings:
    return make_settings(database_url, **smtp.settings())


async def put(client: httpx.AsyncClient, auth: dict[str, str], channels: list[dict[str, Any]], **extra: Any) -> Any:
    response = await client.put("/api/v1/page/contact-channels", headers=auth, json={"channels": channels, **extra})
    assert response.status_code == 200, response.text
    return response.json()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 2.0) -> float:
    """Seconds until ``check`` holds (the page's cache hears of the change through the event stream)."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout_s, "not within the time allowed"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def follow_up(client: httpx.AsyncClient, auth: dict[str, str], incident_id: str, message: str) -> None:
    body = {"status": "identified", "message": message, "channels": ["email", "status_page"]}
    response = await client.post(f"/api/v1/incidents/{incident_id}/updates", headers=auth, json=body)
    assert response.status_code == 201, response.text


def latest_text(smtp: RecordingSMTP) -> str:
    part = smtp.received[-1].message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_banner_everywhere_while_it_applies_and_gone_when_all_open(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, runtime: Runtime, smtp: RecordingSMTP, tmp_path
) -> None:
    subscriber = {"channel": "email", "address": "ops@example.org", "confirmed": True}
    assert (await client.post("/api/v1/subscribers", headers=auth, json=subscriber)).status_code == 201
    opened = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={"title": "Call centre outage", "status": "investigating", "message": "Phones are down."},
    )
    incident_id = opened.json()["id"]
    await make_user(runtime, "ana", "agent")
    await login(client, "ana")

    saved = await put(client, auth, JAMMED)
    assert saved["contact_banner"] is True and saved["update"] is None
    assert [c["state"] for c in saved["contact_channels"]] == ["busy", "open"]

    async def page_has_banner() -> bool:
        return "How to reach us now" in (await client.get("/")).text

    print(f"banner on the page after {await eventually(page_has_banner):.2f} s")
    html = (await client.get("/")).text
    banner = html[html.index('<div id="contact-now">') : html.index("</section>", html.index("contact-now-heading"))]
    assert '<a href="tel:+441234567890">Phone</a></strong>: <span class="state">Busy</span>. Lines are jammed' in banner
    assert '<a href="https://acme.example/chat">Chat</a></strong>: <span class="state">Open</span>' in banner
    assert "How to reach us now" in (await client.get(f"/incidents/{incident_id}")).text
    summary = (await client.get("/api/v2/summary.json")).json()
    assert list(summary) == FIELDS["endpoints"]["summary.json"], "the extension is inside page, nowhere else"
    assert list(summary["page"])[: len(FIELDS["page"])] == FIELDS["page"]
    assert summary["page"]["contact_channels"][0] == {**JAMMED[0]}
    assert "Lines are jammed; use chat" in (await client.get("/desk/fragment")).text
    await export_site(settings, runtime.engine, tmp_path)
    assert "Lines are jammed; use chat" in (tmp_path / "index.html").read_text()

    preview = await client.post(
        "/api/v1/preview", headers=auth, json={"incident_id": incident_id, "status": "identified", "message": "Found."}
    )
    assert LINE in preview.json()["email"]["text"]
    await follow_up(client, auth, incident_id, "We found the fault in the exchange.")
    await run_worker(settings)
    assert LINE in latest_text(smtp)
    html_part = smtp.received[-1].message.get_body(preferencelist=("html",))
    assert html_part is not None and LINE in str(html_part.get_content())

    await put(client, auth, ALL_OPEN)

    async def banner_gone() -> bool:
        return "How to reach us now" not in (await client.get("/")).text

    await eventually(banner_gone)
    assert "How to reach us now" not in (await client.get("/desk/fragment")).text
    assert (await client.get("/api/v2/status.json")).json()["page"]["contact_channels"][0]["state"] == "open"
    await follow_up(client, auth, incident_id, "Phones are back.")
    await run_worker(settings)
    assert "How to reach us" not in latest_text(smtp)

    async with runtime.engine.connect() as conn:
        query = select(audit_log).where(audit_log.c.action == "page.contact_channels").order_by(audit_log.c.id)
        rows = (await conn.execute(query)).mappings().all()
    assert [r["actor"] for r in rows] == ["token:tests", "token:tests"]
    assert rows[0]["details"]["before"] == [] and rows[1]["details"]["before"][0]["state"] == "busy"
    assert rows[1]["details"]["channels"][0]["state"] == "open" and rows[1]["details"]["notify"] is False


async def test_notify_posts_through_the_posting_service(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    first = await put(client, auth, JAMMED, notify=True)
    assert first["update"] is not None, "nothing open: the change opens its own incident"
    incident = (await client.get(f"/api/v1/incidents/{first['update']['incident_id']}", headers=auth)).json()
    assert incident["name"] == "How to reach us has changed" and incident["status"] == "identified"
    assert incident["impact"] == "none" and incident["updates"][0]["body"] == LINE

    again = await put(client, auth, JAMMED, notify=True, message="Still jammed: please use chat.")
    assert again["update"]["incident_id"] == incident["id"], "the open incident gets the next change"
    assert (await client.get(f"/api/v1/incidents/{incident['id']}", headers=auth)).json()["status"] == "identified"

    done = await put(client, auth, ALL_OPEN, notify=True)
    closed = (await client.get(f"/api/v1/incidents/{done['update']['incident_id']}", headers=auth)).json()
    assert closed["id"] == incident["id"] and closed["status"] == "resolved"
    assert closed["updates"][0]["body"] == "All our contact channels are open again."
    quiet = await put(client, auth, ALL_OPEN, notify=True)
    assert quiet["update"] is None, "all open and nothing open: nobody needs telling"


async def test_bad_lists_are_refused_naming_the_field(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for channels, field in (
        ([{"name": "Phone", "state": "busy"}, {"name": "phone", "state": "open"}], "channels.1.name"),
        ([{"name": "Phone", "state": "jammed"}], "channels.0.state"),
        ([{"name": "Chat", "state": "open", "url": "javascript:alert(1)"}], "channels.0.url"),
        ([{"name": "", "state": "open"}], "channels.0.name"),
        ([{"name": f"C{i}", "state": "open"} for i in range(11)], "channels"),
    ):
        response = await client.put("/api/v1/page/contact-channels", headers=auth, json={"channels": channels})
        assert response.status_code == 422, response.text
        assert field in response.json()["error"]["fields"], response.text
    assert (await client.get("/api/v1/page", headers=auth)).json()["contact_channels"] == []
