"""The drill audience never touches real subscribers' rows (issue 15, acceptance 5).

An address in the drill audience signs up publicly (``POST /subscribe``, the mailed link),
confirms, and gets the next real incident; a drill still reaches only the drill audience:
its drill row gets the drill, its real row does not. Real SMTP (aiosmtpd), a real arq worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.crisis import playbooks
from broadcaster.db import deliveries, subscribers
from broadcaster.runtime import Runtime
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings, run_worker
from tests.integration.test_console import login

CONFIRM_LINK = re.compile(r"http://status\.test/subscriptions/confirm\?token=[A-Za-z0-9._-]+")
UNSUBSCRIBE_LINK = re.compile(r"<(http://status\.test/unsubscribe\?token=[^>]+)>")
BOTH = "both@example.org"  # in the drill audience, and signs up for real
DRILL_ONLY = "rehearsal@example.org"
REAL_ONLY = "customer@example.org"


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
def settings(database_url: str, clean_database: None, smtp: RecordingSMTP) -> Settings:
    return make_settings(database_url, **smtp.settings())


def mails_to(smtp: RecordingSMTP, address: str) -> list[EmailMessage]:
    return [r.message for r in smtp.received if address in r.rcpt_tos]


def subjects(smtp: RecordingSMTP, address: str, start: int = 0) -> list[str]:
    return [str(m["Subject"]) for m in mails_to(smtp, address)[start:]]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def rows_of(runtime: Runtime, address: str) -> dict[bool, dict[str, Any]]:
    """The address's subscriber rows by their drill flag."""
    async with runtime.engine.connect() as conn:
        result = await conn.execute(select(subscribers).where(subscribers.c.address == address))
        return {bool(r["drill"]): dict(r) for r in result.mappings()}


async def recipients(runtime: Runtime, update_id: str) -> set[str]:
    async with runtime.engine.connect() as conn:
        result = await conn.execute(
            select(deliveries.c.recipient).where(deliveries.c.update_id == update_id, deliveries.c.channel == "email")
        )
        return {str(r) for r in result.scalars()}


async def sign_up_by_mail(client: httpx.AsyncClient, settings: Settings, smtp: RecordingSMTP, address: str) -> None:
    response = await client.post("/subscribe", json={"email": address})
    assert response.status_code == 202, response.text
    await run_worker(settings)
    confirmation = mails_to(smtp, address)[-1]
    assert confirmation["Subject"] == "Confirm your subscription to Test Status"
    link = CONFIRM_LINK.search(text_of(confirmation))
    assert link, text_of(confirmation)
    confirmed = await client.get(link.group(0))
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text


async def real_post(client: httpx.AsyncClient, auth: dict[str, str], title: str) -> str:
    response = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={
            "title": title,
            "status": "investigating",
            "impact": "major",
            "message": "Looking into it.",
            "channels": ["email"],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["update"]["id"])


async def open_drill(client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime) -> str:
    async with runtime.engine.begin() as conn:
        book = await playbooks.create_playbook(conn, playbooks.PlaybookIn(name="Outage", crisis_type="outage"))
        await playbooks.save_level(
            conn,
            book["id"],
            playbooks.LevelIn(
                level=1,
                name="Level 1",
                title="Rehearsed outage",
                message="Drill: checkout is down.",
                impact="major",
                channels=["email"],
            ),
        )
    opened = await client.post(f"/api/v1/playbooks/{book['id']}/open", headers=auth, json={"level": 1, "drill": True})
    assert opened.status_code == 201, opened.text
    assert opened.json()["drill"] is True
    incident = await client.get(f"/api/v1/incidents/{opened.json()['id']}", headers=auth)
    assert incident.status_code == 200, incident.text
    [drill_update] = [str(u["id"]) for u in incident.json()["updates"]]
    return drill_update


async def test_a_drill_recipient_signs_up_for_real_and_each_row_gets_only_its_own(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, smtp: RecordingSMTP, runtime: Runtime
) -> None:
    csrf = await login(client, runtime, "ic", "commander")
    for address in (BOTH, DRILL_ONLY):
        added = await client.post(
            "/console/drills/audience", data={"csrf_token": csrf, "channel": "email", "address": address}
        )
        assert added.status_code == 303, added.text
    drill_row = (await rows_of(runtime, BOTH))[True]

    # The drill recipient signs up like anyone: opt-in mail, the link, then a real, confirmed row.
    await sign_up_by_mail(client, settings, smtp, BOTH)
    await sign_up_by_mail(client, settings, smtp, REAL_ONLY)
    rows = await rows_of(runtime, BOTH)
    assert set(rows) == {True, False}, "the sign-up is its own row"
    assert rows[True] == drill_row, "the drill row is untouched by the sign-up"
    assert rows[False]["confirmed"] and rows[False]["unsubscribed_at"] is None

    # The next real incident reaches the real rows, and never a drill-only recipient.
    real_update = await real_post(client, auth, "Login failures")
    await run_worker(settings)
    assert subjects(smtp, BOTH)[-1] == "[Investigating] Login failures"
    assert subjects(smtp, REAL_ONLY)[-1] == "[Investigating] Login failures"
    assert subjects(smtp, DRILL_ONLY) == []
    real_ids = {(await rows_of(runtime, a))[False]["id"] for a in (BOTH, REAL_ONLY)}
    assert await recipients(runtime, real_update) == real_ids

    # A drill reaches the drill audience only: the drill row of BOTH, not its real row.
    mails_before = len(mails_to(smtp, BOTH))
    drill_update = await open_drill(client, auth, runtime)
    await run_worker(settings)
    assert subjects(smtp, BOTH, mails_before) == ["[DRILL] [Investigating] Rehearsed outage"]
    assert subjects(smtp, DRILL_ONLY) == ["[DRILL] [Investigating] Rehearsed outage"]
    assert len(mails_to(smtp, REAL_ONLY)) == 2, "the confirmation and the real incident, no drill"
    drill_ids = {(await rows_of(runtime, a))[True]["id"] for a in (BOTH, DRILL_ONLY)}
    assert await recipients(runtime, drill_update) == drill_ids


async def test_unsubscribing_from_the_drill_leaves_the_real_subscription(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, smtp: RecordingSMTP, runtime: Runtime
) -> None:
    # Real first, through the admin API; then the same address joins the drill audience.
    created = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": BOTH, "confirmed": True}
    )
    assert created.status_code == 201, created.text
    csrf = await login(client, runtime, "ic", "commander")
    added = await client.post(
        "/console/drills/audience", data={"csrf_token": csrf, "channel": "email", "address": BOTH}
    )
    assert added.status_code == 303, "an address that is a real subscriber may join the drill audience"
    again = await client.post(
        "/console/drills/audience", data={"csrf_token": csrf, "channel": "email", "address": BOTH}
    )
    assert again.status_code == 303
    rows = await rows_of(runtime, BOTH)
    assert set(rows) == {True, False} and rows[False]["id"] == created.json()["id"]
    listed = (await client.get("/api/v1/subscribers", headers=auth)).json()
    assert [s["id"] for s in listed["subscribers"]] == [rows[False]["id"]], "drill rows are not subscribers"

    await open_drill(client, auth, runtime)
    await run_worker(settings)
    drill_mail = mails_to(smtp, BOTH)[-1]
    assert str(drill_mail["Subject"]).startswith("[DRILL] ")
    # The drill mail's one-click link unsubscribes the drill row it was sent to, nothing else.
    link = UNSUBSCRIBE_LINK.search(str(drill_mail["List-Unsubscribe"]))
    assert link
    response = await client.post(
        link.group(1),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    rows = await rows_of(runtime, BOTH)
    assert rows[True]["unsubscribed_at"] is not None and rows[False]["unsubscribed_at"] is None

    real_update = await real_post(client, auth, "Search slow")
    await run_worker(settings)
    assert subjects(smtp, BOTH)[-1] == "[Investigating] Search slow"
    assert await recipients(runtime, real_update) == {rows[False]["id"]}

    # Removing the drill recipient deletes its row only.
    removed = await client.post(f"/console/drills/audience/{rows[True]['id']}/delete", data={"csrf_token": csrf})
    assert removed.status_code == 303
    assert set(await rows_of(runtime, BOTH)) == {False}
