"""Crisis playbooks end to end: a real worker, a local SMTP server and local provider apps.

1. Opening an incident from a playbook notifies exactly that level's contacts (email and
   SMS), later updates keep them informed, and acknowledgement links record who and when.
2. Raising the level notifies the added contacts only.
3. A drill with 1,000 real subscribers on file reaches none of them: only the drill audience
   gets messages, each marked DRILL; social and knowledge-base providers get nothing; the
   public page and API never show it; the drill report is computed from stored timestamps.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.config import Settings
from broadcaster.crisis import contacts, playbooks
from broadcaster.db import audit_log, deliveries, incident_contacts, incidents, subscribers, updates, utcnow
from broadcaster.runtime import Runtime
from broadcaster.security import new_webhook_secret
from sandbox.providers.bluesky import BlueskyProvider
from sandbox.providers.freshdesk import FakeFreshdesk
from sandbox.providers.mastodon import MastodonProvider
from sandbox.providers.twilio import TwilioProvider
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.providers.x import XProvider
from sandbox.providers.zendesk import FakeZendesk
from sandbox.serve import serve_app
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings, run_worker
from tests.integration.test_console import login

ALL_CHANNELS = ["status_page", "desk", "email", "sms", "webhook", "mastodon", "bluesky", "x", "zendesk", "freshdesk"]
ACK_LINK = re.compile(r"http://status\.test/ack\?token=[A-Za-z0-9_.\-]+")


@dataclass
class Providers:
    smtp: RecordingSMTP
    twilio: TwilioProvider
    mastodon: MastodonProvider
    bluesky: BlueskyProvider
    x: XProvider
    zendesk: FakeZendesk
    freshdesk: FakeFreshdesk
    real_hooks: WebhookReceiver
    drill_hooks: WebhookReceiver
    urls: dict[str, str]


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
async def providers(smtp: RecordingSMTP) -> AsyncIterator[Providers]:
    rig = Providers(
        smtp,
        TwilioProvider(),
        MastodonProvider(),
        BlueskyProvider(),
        XProvider(),
        FakeZendesk(),
        FakeFreshdesk(),
        WebhookReceiver(),
        WebhookReceiver(),
        {},
    )
    apps = {
        "twilio": rig.twilio.app,
        "mastodon": rig.mastodon.app,
        "bluesky": rig.bluesky.app,
        "x": rig.x.app,
        "zendesk": rig.zendesk.app,
        "freshdesk": rig.freshdesk.app,
        "real_hooks": rig.real_hooks.app(),
        "drill_hooks": rig.drill_hooks.app(),
    }
    async with (
        serve_app(apps["twilio"]) as twilio,
        serve_app(apps["mastodon"]) as mastodon,
        serve_app(apps["bluesky"]) as bluesky,
        serve_app(apps["x"]) as x,
        serve_app(apps["zendesk"]) as zendesk,
        serve_app(apps["freshdesk"]) as freshdesk,
        serve_app(apps["real_hooks"]) as real_hooks,
        serve_app(apps["drill_hooks"]) as drill_hooks,
    ):
        rig.zendesk.base_url = zendesk
        rig.urls = {
            "twilio": twilio,
            "mastodon": mastodon,
            "bluesky": bluesky,
            "x": x,
            "zendesk": zendesk,
            "freshdesk": freshdesk,
            "real_hooks": real_hooks,
            "drill_hooks": drill_hooks,
        }
        yield rig


@pytest.fixture
def settings(database_url: str, clean_database: None, providers: Providers) -> Settings:
    """Every channel enabled, each pointed at its local provider (overrides conftest's)."""
    p, urls = providers, providers.urls
    return make_settings(
        database_url,
        **p.smtp.settings(),
        twilio_base_url=urls["twilio"],
        twilio_account_sid=p.twilio.account_sid,
        twilio_auth_token=p.twilio.auth_token,
        twilio_from=next(iter(p.twilio.senders)),
        sms_rate_per_s=500.0,
        mastodon_base_url=urls["mastodon"],
        mastodon_access_token=p.mastodon.token,
        bluesky_base_url=urls["bluesky"],
        bluesky_handle=p.bluesky.handle,
        bluesky_app_password=p.bluesky.password,
        x_base_url=urls["x"],
        x_access_token=p.x.token,
        zendesk_base_url=urls["zendesk"],
        zendesk_email=p.zendesk.email,
        zendesk_api_token=p.zendesk.api_token,
        zendesk_section_id="360001",
        zendesk_permission_group_id=1501,
        freshdesk_base_url=urls["freshdesk"],
        freshdesk_api_key=p.freshdesk.api_key,
        freshdesk_folder_id="73000012",
    )


PEOPLE = {
    "ana": {"name": "Ana Ops", "role": "Incident commander", "email": "ana@example.com", "phone": "+14155550101"},
    "ben": {"name": "Ben Eng", "role": "Engineering lead", "email": "ben@example.com"},
    "cleo": {"name": "Cleo Comms", "role": "Communications", "email": "cleo@example.com", "phone": "+14155550103"},
    "dan": {"name": "Dan Legal", "role": "Legal", "email": "dan@example.com", "phone": "+14155550104"},
}


async def make_playbook(rt: Runtime, channels: list[str], levels: dict[int, list[str]]) -> tuple[str, dict[str, str]]:
    """A playbook whose level N lists ``levels[N]`` (keys of PEOPLE); returns (id, contact ids by key)."""
    async with rt.engine.begin() as conn:
        ids = {
            key: (await contacts.create_contact(conn, contacts.ContactIn(**data)))["id"] for key, data in PEOPLE.items()
        }
        book = await playbooks.create_playbook(conn, playbooks.PlaybookIn(name="Outage", crisis_type="outage"))
        for number, people in levels.items():
            await playbooks.save_level(
                conn,
                book["id"],
                playbooks.LevelIn(
                    level=number,
                    name=f"Level {number}",
                    title=f"Checkout down (L{number})",
                    message="Checkout is failing for some customers. We are on it.",
                    impact="major",
                    agent={"talking_points": "Engineers are on it.", "escalation": "Call the IC."},
                    channels=channels,
                    cadence_minutes=30,
                ),
            )
            await contacts.assign(conn, [ids[k] for k in people], book["id"], number)
    return book["id"], ids


def rcpts(smtp: RecordingSMTP, start: int = 0) -> list[str]:
    return sorted(r for m in smtp.received[start:] for r in m.rcpt_tos)


def body_of(smtp: RecordingSMTP, address: str) -> str:
    mail = next(m.message for m in smtp.received if address in m.rcpt_tos)
    text: str = mail.get_body(("plain",)).get_content()
    return text


async def team(client: httpx.AsyncClient, auth: dict[str, str], incident_id: str) -> dict[str, dict[str, Any]]:
    response = await client.get(f"/api/v1/incidents/{incident_id}/contacts", headers=auth)
    assert response.status_code == 200, response.text
    return {row["name"]: row for row in response.json()}


async def test_opening_notifies_exactly_the_levels_contacts_and_acks_record_who_and_when(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, auth: dict[str, str], providers: Providers
) -> None:
    smtp, twilio = providers.smtp, providers.twilio
    playbook_id, ids = await make_playbook(runtime, ["status_page"], {1: ["ana", "ben"], 2: ["cleo", "ana"]})
    response = await client.post(f"/api/v1/playbooks/{playbook_id}/open", headers=auth, json={"level": 1})
    assert response.status_code == 201, response.text
    opened = response.json()
    incident_id = opened["id"]
    assert opened["level"] == 1 and opened["drill"] is False and opened["name"] == "Checkout down (L1)"
    assert {c["name"] for c in opened["contacts"]} == {"Ana Ops", "Ben Eng"}
    async with runtime.engine.connect() as conn:
        meta = (await conn.execute(select(incidents.c.meta).where(incidents.c.id == incident_id))).scalar_one()
        first = (await conn.execute(select(updates).where(updates.c.incident_id == incident_id))).mappings().one()
    assert meta["playbook_id"] == playbook_id and meta["level"] == 1
    assert first["next_update_at"] - first["created_at"] == timedelta(minutes=30), "the level's cadence"
    assert first["channels"] == ["status_page"] and first["agent"]["escalation"] == "Call the IC."

    await run_worker(settings)
    assert rcpts(smtp) == ["ana@example.com", "ben@example.com"], "exactly level 1's contacts, once each"
    assert [m["to"] for m in twilio.messages] == ["+14155550101"], "Ben has no phone; Cleo and Dan are not on L1"
    mail = next(m.message for m in smtp.received if "ana@example.com" in m.rcpt_tos)
    assert mail["Subject"] == "[Outage L1] Checkout down (L1): Investigating"
    text = body_of(smtp, "ana@example.com")
    assert "Your role: Incident commander" in text
    assert "Checkout is failing for some customers. We are on it." in text, "the public text that went out"
    assert "Talking points: Engineers are on it." in text
    assert f"http://status.test/console/playbooks/incidents/{incident_id}" in text
    assert "unsubscribe" not in text.lower() and "List-Unsubscribe" not in mail
    assert "Ack:" in twilio.messages[0]["body"]

    # Acknowledge by the email link: the GET is a page with a button, the POST records.
    link = ACK_LINK.search(text)
    assert link
    token = link.group(0).split("token=")[1]
    page = await client.get(f"/ack?token={token}")
    assert page.status_code == 200 and "Ana Ops" in page.text and "Acknowledge" in page.text
    assert (await team(client, auth, incident_id))["Ana Ops"]["acknowledged_at"] is None, "GET records nothing"
    before = utcnow()
    done = await client.post("/ack", data={"token": token})
    assert done.status_code == 200 and "Acknowledged by Ana Ops" in done.text
    members = await team(client, auth, incident_id)
    acked_at = members["Ana Ops"]["acknowledged_at"]
    assert acked_at is not None and acked_at >= before.strftime("%Y-%m-%dT%H:%M:%S")
    assert members["Ben Eng"]["acknowledged_at"] is None
    # A second press (from the SMS link) changes nothing: the first acknowledgement counts.
    sms_link = ACK_LINK.search(twilio.messages[0]["body"])
    assert sms_link
    assert (await client.post(sms_link.group(0).replace("http://status.test", ""))).status_code == 200
    assert (await team(client, auth, incident_id))["Ana Ops"]["acknowledged_at"] == acked_at
    # Change a character inside the signature: the last base64 characters may carry only padding bits.
    middle = len(token) - 10
    forged = await client.post(
        "/ack", data={"token": token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]}
    )
    assert forged.status_code == 422
    async with runtime.engine.connect() as conn:
        acks = (await conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "contact.acknowledge"))).all()
        token_hash = (
            await conn.execute(
                select(incident_contacts.c.ack_token_hash).where(incident_contacts.c.contact_id == ids["ana"])
            )
        ).scalar_one()
    assert [a.actor for a in acks] == ["contact:Ana Ops"] and token_hash

    # The console shows who has and has not acknowledged.
    await login(client, runtime, "viewer", "viewer")
    console = await client.get(f"/console/playbooks/incidents/{incident_id}")
    assert console.status_code == 200
    assert "Acknowledged (1 of 2)" in console.text and "Waiting for: Ben Eng" in console.text

    # Every later update reaches the team again (here through the REST API), with no new ack link for Ana.
    later = await client.post(
        f"/api/v1/incidents/{incident_id}/updates",
        headers=auth,
        json={"status": "identified", "message": "Found it: a bad deploy."},
    )
    assert later.status_code == 201
    count_before = len(smtp.received)
    await run_worker(settings)
    assert rcpts(smtp, count_before) == ["ana@example.com", "ben@example.com"]
    latest = [m.message for m in smtp.received[count_before:]]
    assert all(m["Subject"].endswith(": Identified") for m in latest)
    ana_update = next(m for m in latest if m["To"] == "ana@example.com").get_body(("plain",)).get_content()
    assert "Found it: a bad deploy." in ana_update and "/ack?token=" not in ana_update
    assert len(twilio.messages) == 2
    await run_worker(settings)
    assert len(smtp.received) == count_before + 2, "a re-run sends nothing twice"


async def test_raising_the_level_notifies_only_the_added_contacts(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, auth: dict[str, str], providers: Providers
) -> None:
    smtp, twilio = providers.smtp, providers.twilio
    playbook_id, ids = await make_playbook(
        runtime, ["status_page"], {1: ["ana", "ben"], 2: ["ana", "cleo"], 3: ["dan"]}
    )
    incident_id = (await client.post(f"/api/v1/playbooks/{playbook_id}/open", headers=auth, json={"level": 1})).json()[
        "id"
    ]
    await run_worker(settings)
    mails, texts = len(smtp.received), len(twilio.messages)

    raised = await client.post(f"/api/v1/incidents/{incident_id}/level", headers=auth, json={"level": 2})
    assert raised.status_code == 200, raised.text
    assert raised.json()["added"] == [ids["cleo"]], "Ana is already on the incident"
    await run_worker(settings)
    assert rcpts(smtp, mails) == ["cleo@example.com"]
    assert [m["to"] for m in twilio.messages[texts:]] == ["+14155550103"]
    assert smtp.received[mails].message["Subject"].startswith("[Outage L2] ")

    for body, status in (({"level": 2}, 422), ({"level": 1}, 422), ({"level": 9}, 422), ({"level": "x"}, 422)):
        response = await client.post(f"/api/v1/incidents/{incident_id}/level", headers=auth, json=body)
        assert response.status_code == status, (body, response.text)
    assert (await client.post("/api/v1/incidents/nope/level", headers=auth, json={"level": 3})).status_code == 404
    members = await team(client, auth, incident_id)
    assert {n: m["level"] for n, m in members.items()} == {"Ana Ops": 1, "Ben Eng": 1, "Cleo Comms": 2}
    async with runtime.engine.connect() as conn:
        meta = (await conn.execute(select(incidents.c.meta).where(incidents.c.id == incident_id))).scalar_one()
    assert meta["level"] == 2 and [h["level"] for h in meta["levels"]] == [1, 2]

    # The console's escalation form does the same for level 3: Dan only.
    csrf = await login(client, runtime, "ic", "commander")
    response = await client.post(
        f"/console/playbooks/incidents/{incident_id}/level", data={"csrf_token": csrf, "level": "3"}
    )
    assert response.status_code == 303
    mails = len(smtp.received)
    await run_worker(settings)
    assert rcpts(smtp, mails) == ["dan@example.com"]


async def seed_real_subscribers(rt: Runtime, hooks_url: str) -> list[str]:
    """1,000 confirmed real subscribers (400 email, 400 SMS, 200 webhooks), inserted in bulk."""
    now = utcnow()
    rows = []
    for i in range(1000):
        if i < 400:
            channel, address, secret = "email", f"real{i}@example.org", None
        elif i < 800:
            channel, address, secret = "sms", f"+1415555{i:04d}", None
        else:
            channel, address, secret = "webhook", f"{hooks_url}/hook?subscriber={i}", new_webhook_secret()
        rows.append(
            {
                "id": f"real{i:08d}",
                "channel": channel,
                "address": address,
                "confirmed": True,
                "confirmed_at": now,
                "created_at": now,
                "drill": False,
                "secret": secret,
                "meta": {},
            }
        )
    async with rt.engine.begin() as conn:
        await conn.execute(subscribers.insert(), rows)
    return [r["address"] for r in rows]


async def test_a_drill_never_reaches_a_real_subscriber(
    app: Any,
    client: httpx.AsyncClient,
    runtime: Runtime,
    settings: Settings,
    auth: dict[str, str],
    providers: Providers,
) -> None:
    p = providers
    real = set(await seed_real_subscribers(runtime, p.urls["real_hooks"]))
    playbook_id, _ = await make_playbook(runtime, ALL_CHANNELS, {1: ["ana"]})
    csrf = await login(client, runtime, "ic", "commander")
    audience = {"email": "drill@example.com", "sms": "+14155550190", "webhook": f"{p.urls['drill_hooks']}/hook"}
    for channel, address in audience.items():
        added = await client.post(
            "/console/drills/audience", data={"csrf_token": csrf, "channel": channel, "address": address}
        )
        assert added.status_code == 303, added.text
    async with runtime.engine.connect() as conn:
        secret = (
            await conn.execute(
                select(subscribers.c.secret).where(subscribers.c.channel == "webhook", subscribers.c.drill.is_(True))
            )
        ).scalar_one()
    p.drill_hooks.secret = secret

    opened = await client.post(f"/api/v1/playbooks/{playbook_id}/open", headers=auth, json={"level": 1, "drill": True})
    assert opened.status_code == 201, opened.text
    incident_id = opened.json()["id"]
    assert opened.json()["drill"] is True
    refused_components = await client.post(
        f"/api/v1/playbooks/{playbook_id}/open",
        headers=auth,
        json={"level": 1, "drill": True, "components": {"x": "major_outage"}},
    )
    assert refused_components.status_code == 422
    await run_worker(settings, timeout_s=60)
    for status in ("identified", "resolved"):
        posted = await client.post(
            f"/api/v1/incidents/{incident_id}/updates",
            headers=auth,
            json={"status": status, "message": f"Drill: {status}.", "next_update_in_minutes": 15},
        )
        assert posted.status_code == 201
        await run_worker(settings, timeout_s=60)

    # Not one message reached a real subscriber, on any channel.
    mail_rcpts = [r for m in p.smtp.received for r in m.rcpt_tos]
    sms_to = [m["to"] for m in p.twilio.messages]
    assert not real & set(mail_rcpts) and not real & set(sms_to)
    assert p.real_hooks.received == [] and p.real_hooks.attempts == 0
    # The drill audience got every update, marked DRILL; so did the contact (the team rehearses too).
    assert sorted(mail_rcpts) == sorted(["drill@example.com"] * 3 + ["ana@example.com"] * 3)
    assert sorted(sms_to) == sorted(["+14155550190"] * 3 + ["+14155550101"] * 3)
    assert all(m["Subject"].startswith("[DRILL] ") for m in p.smtp.messages)
    assert all(m["body"].startswith("DRILL ") for m in p.twilio.messages)
    assert len(p.drill_hooks.received) == 3 and p.drill_hooks.verified == 3
    assert all(b'"drill":true' in item["body"].replace(b" ", b"") for item in p.drill_hooks.received)
    # Social networks and knowledge bases got nothing at all.
    assert p.mastodon.requests == [] and p.x.requests == []
    assert p.bluesky.requests == [] and p.bluesky.calls == []
    assert p.zendesk.received == [] and p.freshdesk.received == []
    # The ledger agrees: rows only for the drill audience and the page/desk.
    async with runtime.engine.connect() as conn:
        ledger = dict(
            (
                await conn.execute(
                    select(deliveries.c.channel, func.count())
                    .join(updates, updates.c.id == deliveries.c.update_id)
                    .where(updates.c.incident_id == incident_id)
                    .group_by(deliveries.c.channel)
                )
            ).all()
        )
    assert ledger == {"status_page": 3, "desk": 3, "email": 3, "sms": 3, "webhook": 3}

    # The public page and API never show it; the console preview (login required) does.
    for path in (
        "/api/v2/incidents.json",
        "/api/v2/summary.json",
        "/api/v2/incidents/unresolved.json",
        "/",
        "/history",
        "/history.atom",
    ):
        public = await client.get(path)
        assert public.status_code == 200 and incident_id not in public.text and "(L1)" not in public.text, path
    assert (await client.get(f"/incidents/{incident_id}")).status_code == 404
    preview = await client.get(f"/console/drills/{incident_id}/page")
    assert preview.status_code == 200 and "Checkout down (L1)" in preview.text and "DRILL" in preview.text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as anonymous:
        assert (await anonymous.get(f"/console/drills/{incident_id}/page")).status_code == 401

    # The drill report: figures from stored timestamps (set here to known values).
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=2)
    async with runtime.engine.begin() as conn:
        await conn.execute(
            incidents.update()
            .where(incidents.c.id == incident_id)
            .values(started_at=t0, resolved_at=t0 + timedelta(minutes=50))
        )
        for number, minutes, promise in ((1, 1.5, 30), (2, 11.5, 15), (3, 50, None)):
            created = t0 + timedelta(minutes=minutes)
            await conn.execute(
                updates.update()
                .where(updates.c.incident_id == incident_id, updates.c.number == number)
                .values(created_at=created, next_update_at=created + timedelta(minutes=promise) if promise else None)
            )
        await conn.execute(
            incident_contacts.update()
            .where(incident_contacts.c.incident_id == incident_id)
            .values(
                notified_at=t0 + timedelta(minutes=1, seconds=35), acknowledged_at=t0 + timedelta(minutes=4, seconds=5)
            )
        )
    report = (await client.get(f"/api/v1/incidents/{incident_id}/report", headers=auth)).json()
    assert report["time_to_first_update_s"] == 90
    assert [i["kept"] for i in report["intervals"]] == [True, False]
    assert report["intervals"][1]["late_by_s"] == (50 - 11.5 - 15) * 60
    assert report["acknowledgements"] == [
        {
            "name": "Ana Ops",
            "role": "Incident commander",
            "level": 1,
            "notified_at": (t0 + timedelta(seconds=95)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "acknowledged_at": (t0 + timedelta(seconds=245)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "after_s": 150.0,
        }
    ]
    assert report["reach"]["email"] == {"sent": 3, "failed": 0, "pending": 0, "total": 3}
    page = await client.get(f"/console/drills/{incident_id}/report")
    assert page.status_code == 200
    assert '<dd id="ttfu">1 min 30 s</dd>' in page.text and "1 kept, 1 broken" in page.text
    assert "2 min 30 s" in page.text
