"""Email subscriptions end to end: /subscribe -> opt-in mail -> confirm -> threaded updates ->
one-click unsubscribe, against a real SMTP server (aiosmtpd) and a real arq worker."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import deliveries, subscribers
from broadcaster.delivery.fanout import recipient_links
from broadcaster.runtime import Runtime
from broadcaster.security import LinkSigner
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings, run_worker

LINK = re.compile(r"http://status\.test/subscriptions/confirm\?token=[A-Za-z0-9._-]+")


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
def settings(database_url: str, clean_database: None, smtp: RecordingSMTP) -> Settings:
    return make_settings(
        database_url, **smtp.settings(), retry_base_s=0.3, retry_max_s=1.5, max_attempts=12, circuit_cooldown_s=1.0
    )


def mails_to(smtp: RecordingSMTP, address: str) -> list[EmailMessage]:
    return [r.message for r in smtp.received if address in r.rcpt_tos]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def sign_up(
    client: httpx.AsyncClient, settings: Settings, smtp: RecordingSMTP, runtime: Runtime, address: str, **extra: Any
) -> str:
    """Sign up through /subscribe, follow the mailed link; returns the subscriber id."""
    response = await client.post("/subscribe", json={"email": address, **extra})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "confirmation_sent"
    await run_worker(settings)
    confirmation = mails_to(smtp, address)[-1]
    assert confirmation["Subject"] == "Confirm your subscription to Test Status"
    link = LINK.search(text_of(confirmation))
    assert link, text_of(confirmation)
    response = await client.get(link.group(0))
    assert response.status_code == 200 and "You are subscribed" in response.text
    async with runtime.engine.connect() as conn:
        query = select(subscribers.c.id).where(subscribers.c.address == address, subscribers.c.drill.is_(False))
        return str((await conn.execute(query)).scalar_one())


async def post(
    client: httpx.AsyncClient, auth: dict[str, str], incident_id: str | None = None, **body: Any
) -> dict[str, Any]:
    payload = {"status": "investigating", "message": "We are looking into it.", "channels": ["email"], **body}
    if incident_id is None:
        payload = {"title": "Login failures", "impact": "major", **payload}
        response = await client.post("/api/v1/incidents", headers=auth, json=payload)
    else:
        response = await client.post(f"/api/v1/incidents/{incident_id}/updates", headers=auth, json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_opt_in_threaded_updates_and_one_click_unsubscribe(client, auth, settings, smtp, runtime) -> None:
    # Before confirming, nothing but the confirmation reaches the address.
    response = await client.post("/subscribe", json={"email": "alice@Example.ORG"})
    assert response.status_code == 202, response.text
    again = await client.post("/subscribe", data={"email": "alice@example.org"})  # a form: HTML answer
    assert again.status_code == 202 and "Check your email" in again.text
    await post(client, auth, title="Before confirming")
    await run_worker(settings)
    before = mails_to(smtp, "alice@example.org")
    assert [m["Subject"] for m in before] == ["Confirm your subscription to Test Status"]
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(subscribers))).all()
    assert len(rows) == 1 and not rows[0].confirmed, "re-subscribing must not duplicate"

    link = LINK.search(text_of(before[0]))
    assert link
    confirmed = await client.get(link.group(0))
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    assert (await client.get("/subscriptions/confirm?token=forged")).status_code == 400

    incident = await post(client, auth)
    await post(client, auth, incident["id"], status="identified", message="A bad deploy; rolling back.")
    await run_worker(settings)
    # The two updates fan out in parallel: they may arrive in either order.
    updates = sorted(mails_to(smtp, "alice@example.org")[1:], key=lambda m: "Identified" in m["Subject"])
    assert [m["Subject"] for m in updates] == ["[Investigating] Login failures", "[Identified] Login failures"]
    raw = [r.data for r in smtp.received if "alice@example.org" in r.rcpt_tos][1:]
    for data in raw:
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert parsed.get_content_type() == "multipart/alternative"
        assert {p.get_content_type() for p in parsed.iter_parts()} == {"text/plain", "text/html"}
        assert not parsed.defects
    first, second = updates
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" to the https link.
    unsubscribe_url = re.search(r"<(http://status\.test/unsubscribe\?token=[^>]+)>", second["List-Unsubscribe"])
    assert unsubscribe_url
    response = await client.post(
        unsubscribe_url.group(1),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    repeat = await client.post(
        unsubscribe_url.group(1),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert repeat.status_code == 200, "one-click unsubscribe is idempotent"

    third = await post(client, auth, incident["id"], status="resolved", message="Fixed.")
    await run_worker(settings)
    assert len(mails_to(smtp, "alice@example.org")) == 3
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(deliveries).where(deliveries.c.update_id == third["id"]))).all()
    assert rows == []


async def test_unsubscribe_page_needs_the_button(client, settings, smtp, runtime) -> None:
    sid = await sign_up(client, settings, smtp, runtime, "bob@example.org")
    unsubscribe_url, _ = recipient_links(settings, LinkSigner(settings.secret_key.get_secret_value()), sid)
    page = await client.get(unsubscribe_url)
    assert page.status_code == 200 and 'method="post"' in page.text
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(subscribers).where(subscribers.c.id == sid))).one()
    assert row.unsubscribed_at is None, "GET must never unsubscribe (mail scanners follow links)"
    assert (await client.get("/unsubscribe?token=nope")).status_code == 400
    assert (await client.post("/unsubscribe?token=nope")).status_code == 400


async def test_component_filters(client, auth, settings, smtp, runtime) -> None:
    a = (await client.post("/api/v1/components", headers=auth, json={"name": "A"})).json()
    b = (await client.post("/api/v1/components", headers=auth, json={"name": "B"})).json()
    # A form post, as the page's sign-up form sends it.
    response = await client.post("/subscribe", data={"email": "only-a@example.org", "components": [a["id"]]})
    assert response.status_code == 202
    await run_worker(settings)
    link = LINK.search(text_of(mails_to(smtp, "only-a@example.org")[0]))
    assert link and "for: A" in text_of(mails_to(smtp, "only-a@example.org")[0])
    assert (await client.get(link.group(0))).status_code == 200
    await sign_up(client, settings, smtp, runtime, "everything@example.org")

    await post(client, auth, title="B down", components={b["id"]: "major_outage"})
    await post(client, auth, title="A slow", components={a["id"]: "degraded_performance"})
    await post(client, auth, title="Everything down")
    await run_worker(settings)
    subjects_a = [m["Subject"] for m in mails_to(smtp, "only-a@example.org")[1:]]
    subjects_all = [m["Subject"] for m in mails_to(smtp, "everything@example.org")[1:]]
    assert sorted(subjects_a) == ["[Investigating] A slow", "[Investigating] Everything down"]
    assert sorted(subjects_all) == [
        "[Investigating] A slow",
        "[Investigating] B down",
        "[Investigating] Everything down",
    ]


async def test_preferences_page_changes_components_and_unsubscribes(client, auth, settings, smtp, runtime) -> None:
    a = (await client.post("/api/v1/components", headers=auth, json={"name": "A"})).json()
    sid = await sign_up(client, settings, smtp, runtime, "carol@example.org")
    _, manage_url = recipient_links(settings, LinkSigner(settings.secret_key.get_secret_value()), sid)
    page = await client.get(manage_url)
    assert page.status_code == 200 and "carol@example.org" in page.text
    token = manage_url.split("token=", 1)[1]
    saved = await client.post("/subscriptions/manage", data={"token": token, "action": "save", "components": [a["id"]]})
    assert saved.status_code == 200 and "Saved." in saved.text
    bad = await client.post("/subscriptions/manage", data={"token": token, "components": ["nope"]})
    assert bad.status_code == 422
    assert (await client.post("/subscriptions/manage", data={"token": "forged"})).status_code == 400
    gone = await client.post("/subscriptions/manage", data={"token": token, "action": "unsubscribe"})
    assert gone.status_code == 200 and "Subscribe again" in gone.text
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(subscribers).where(subscribers.c.id == sid))).one()
    assert row.unsubscribed_at is not None
    back = await client.post("/subscriptions/manage", data={"token": token, "action": "resubscribe"})
    assert back.status_code == 200 and "You are subscribed again." in back.text


async def test_all_mail_arrives_after_the_relay_recovers_none_twice(client, auth, settings, smtp) -> None:
    addresses = [f"user{i}@example.org" for i in range(6)]
    for address in addresses:
        response = await client.post(
            "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": address, "confirmed": True}
        )
        assert response.status_code == 201
    smtp.unavailable_for(3)  # every new connection greeted with 421 for 3 s
    await post(client, auth)
    await run_worker(settings, timeout_s=60)
    assert smtp.handler.connections > 1, "the relay was tried while it answered 421"
    for address in addresses:
        assert len(mails_to(smtp, address)) == 1, address


async def test_hard_bounced_address_is_not_mailed_again(client, auth, settings, smtp, runtime) -> None:
    for address in ("dead@example.org", "alive@example.org"):
        await client.post(
            "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": address, "confirmed": True}
        )
    smtp.refuse("dead@example.org")  # 550 5.1.1
    incident = await post(client, auth)
    await run_worker(settings)
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(subscribers).where(subscribers.c.address == "dead@example.org"))).one()
    assert row.suppressed_reason and "550" in row.suppressed_reason
    second = await post(client, auth, incident["id"], status="identified", message="Found it.")
    await run_worker(settings)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(deliveries.c.address).where(deliveries.c.update_id == second["id"]))).all()
    assert [r.address for r in rows] == ["alive@example.org"]
    assert len(mails_to(smtp, "alive@example.org")) == 2


async def test_sign_up_errors_and_rate_limit(client, settings, smtp, database_url) -> None:
    bad = await client.post("/subscribe", json={"email": "not an address"})
    assert bad.status_code == 422 and "email" in bad.json()["error"]["fields"]
    both = await client.post("/subscribe", json={"email": "a@example.org", "phone": "+14155550100"})
    assert both.status_code == 422
    form = await client.post("/subscribe", data={"email": "nope"})
    assert form.status_code == 422 and "<form" in form.text
    assert (
        await client.post("/subscribe", content=b"{", headers={"Content-Type": "application/json"})
    ).status_code == 400


@pytest.mark.parametrize("limit", [2])
async def test_email_sign_ups_are_rate_limited_per_ip(database_url, clean_database, smtp, limit) -> None:
    from asgi_lifespan import LifespanManager

    from status_page.app import create_app

    settings = make_settings(database_url, **smtp.settings(), subscribe_email_per_ip=limit)
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
    ):
        codes = [
            (await client.post("/subscribe", json={"email": f"u{i}@example.org"})).status_code for i in range(limit + 1)
        ]
        assert codes == [202] * limit + [429]
        limited = await client.post("/subscribe", json={"email": "late@example.org"})
        assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 3600
        pool = await app.state.runtime.queue.pool()
        await pool.delete(settings.queue_name)
