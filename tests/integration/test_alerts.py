"""Alerts become drafts, drafts become the first honest update (issue 24, acceptance 1-4).

The real app over a real database and Redis; acceptance 1 with every channel pointed at its local
provider, acceptance 4 with two real workers running their crons.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.alerts import auth as alert_auth
from broadcaster.crisis import contacts, playbook_yaml, playbooks
from broadcaster.crisis.report import load_report, to_markdown
from broadcaster.db import alert_groups, audit_log, drafts, incidents, updates
from broadcaster.domain import incident_templates
from broadcaster.errors import InputError
from broadcaster.models import AlertSource
from broadcaster.runtime import Runtime
from tests.conftest import make_settings, run_worker, running_worker
from tests.integration.test_console import login
from tests.integration.test_openapi import conforms, served_document
from tests.support import alert_payloads as payloads
from tests.support.all_channels import ALL_CHANNELS, all_providers, app_stack
from tests.support.timing import bound

TEMPLATE = {
    "name": "API errors",
    "title": "API errors",
    "status": "investigating",
    "impact": "major",
    "message": "We are investigating errors on the API. Some requests fail. Next update within 30 minutes.",
}


async def setup_rule(client: httpx.AsyncClient, rt: Runtime, headers: dict[str, str], **rule: Any) -> dict[str, Any]:
    """The API component, the template and an Alertmanager rule on service=api, severity=critical."""
    component = (await client.post("/api/v1/components", headers=headers, json={"name": "API"})).json()
    async with rt.engine.begin() as conn:
        template = await incident_templates.create_template(conn, incident_templates.TemplateIn(**TEMPLATE))
    body = {
        "source": "alertmanager",
        "match": {"service": "api", "severity": "critical"},
        "components": {component["id"]: "major_outage"},
        "template_id": template["id"],
        **rule,
    }
    response = await client.post("/api/v1/alert-rules", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return {"component": component, "template": template, "rule": response.json()}


async def count(rt: Runtime, table: Any) -> int:
    async with rt.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_firing_alert_is_a_draft_at_once_and_publishing_it_reaches_every_channel(database_url: str) -> None:
    """Acceptance 1: the draft within 1 s with the rule's components and the template's words, every
    channel's preview on the console, every channel after publishing, and alert → first update in the report."""
    async with all_providers() as providers, app_stack(providers.settings(database_url)) as stack:
        client, auth, rt = stack.client, stack.auth, stack.runtime
        made = await setup_rule(client, rt, auth)
        await stack.subscribe_everyone(providers)
        await login(client, rt, "cmdr", "commander", email="cmdr@example.org", phone="+14155550123")
        started = time.monotonic()
        sent = await client.post("/api/v1/alerts/alertmanager", headers=auth, json=payloads.alertmanager())
        assert sent.status_code == 200, sent.text
        listed = (await client.get("/api/v1/drafts", headers=auth)).json()
        elapsed_s = time.monotonic() - started
        print(f"alert to draft listed: {elapsed_s:.3f} s")
        assert elapsed_s < 1.0, f"the draft took {elapsed_s:.2f} s"
        (draft,) = listed
        assert draft["components"] == {made["component"]["id"]: "major_outage"}
        assert (draft["title"], draft["message"]) == (TEMPLATE["title"], TEMPLATE["message"])
        assert draft["state"] == "pending" and draft["incident_id"] is None
        assert await count(rt, incidents) == 0, "nothing public before someone sends it"

        await run_worker(stack.settings)  # the commander hears of the draft, by email and SMS
        told = [m.message for m in providers.smtp.received if "cmdr@example.org" in m.rcpt_tos]
        assert len(told) == 1 and str(told[0]["Subject"]) == f"[Draft] {TEMPLATE['title']}: review and send"
        assert f"/console/drafts/{draft['id']}" in told[0].get_body(("plain",)).get_content()
        assert [m for m in providers.twilio.messages if m["to"] == "+14155550123"]
        console = await client.get(f"/console/drafts/{draft['id']}")
        assert console.status_code == 200
        for channel in rt.registry.enabled:
            assert f'data-channel="{channel}"' in console.text, f"no {channel} preview on the draft page"
        assert "Send to every channel" in console.text
        dashboard = await client.get("/console")
        assert f'data-draft="{draft["id"]}"' in dashboard.text

        published = await client.post(f"/api/v1/drafts/{draft['id']}/publish", headers=auth, json={})
        assert published.status_code == 201, published.text
        incident_id, update_id = published.json()["incident_id"], published.json()["update_id"]
        await run_worker(stack.settings)
        counts = (await client.get(f"/api/v1/updates/{update_id}/deliveries", headers=auth)).json()
        for channel in ALL_CHANNELS:
            done = counts.get(channel) or {}
            assert done.get("total") and done.get("sent") == done["total"], (channel, done)
        assert len(providers.mastodon.posts) == len(providers.bluesky.posts) == 1
        assert (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth)).json()["name"] == TEMPLATE["title"]

        async with rt.engine.connect() as conn:
            report = await load_report(conn, incident_id)
        assert report.alert_at is not None and report.alert_to_first_update_s is not None
        print(f"report: alert to first public update {report.alert_to_first_update_s:.2f} s")
        assert 0 <= report.alert_to_first_update_s < 60
        assert "alert to first public update" in to_markdown(report)
        page = await client.get(f"/console/incidents/{incident_id}/report")
        assert page.status_code == 200 and 'id="alert-to-update"' in page.text


async def test_the_same_alert_twice_is_one_draft_and_its_resolve_a_resolve_draft(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Acceptance 2: duplicates (in a row and at the same moment) change nothing; the resolve is proposed on
    the same incident, once, and publishing it closes the incident."""
    await setup_rule(client, runtime, auth)
    firing = payloads.alertmanager()
    first, second = await asyncio.gather(
        client.post("/api/v1/alerts/alertmanager", headers=auth, json=firing),
        client.post("/api/v1/alerts/alertmanager", headers=auth, json=firing),
    )
    again = await client.post("/api/v1/alerts/alertmanager", headers=auth, json=firing)
    assert {r.status_code for r in (first, second, again)} == {200}
    assert len(first.json()["drafts_created"]) + len(second.json()["drafts_created"]) == 1
    assert again.json()["drafts_created"] == []
    (draft,) = (await client.get("/api/v1/drafts", headers=auth)).json()
    incident_id = (await client.post(f"/api/v1/drafts/{draft['id']}/publish", headers=auth, json={})).json()[
        "incident_id"
    ]
    assert (await client.post(f"/api/v1/drafts/{draft['id']}/publish", headers=auth, json={})).status_code == 409

    resolved = payloads.alertmanager("resolved")
    assert (
        len((await client.post("/api/v1/alerts/alertmanager", headers=auth, json=resolved)).json()["drafts_created"])
        == 1
    )
    assert (await client.post("/api/v1/alerts/alertmanager", headers=auth, json=resolved)).json()[
        "drafts_created"
    ] == []
    (resolve,) = (await client.get("/api/v1/drafts", headers=auth)).json()
    assert resolve["kind"] == "resolve" and resolve["incident_id"] == incident_id and resolve["status"] == "resolved"
    done = await client.post(f"/api/v1/drafts/{resolve['id']}/publish", headers=auth, json={})
    assert done.status_code == 201 and done.json()["incident_id"] == incident_id
    incident = (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth)).json()
    assert incident["status"] == "resolved" and len(incident["updates"]) == 2
    assert await count(runtime, incidents) == 1


async def test_pagerduty_with_a_wrong_signature_is_refused_and_nothing_is_stored(database_url: str) -> None:
    """Acceptance 3: 401 and no group, draft or audit row; the right signature makes the draft."""
    settings = make_settings(database_url, pagerduty_webhook_secret="pd-signing-secret")
    async with app_stack(settings) as stack:
        client, rt = stack.client, stack.runtime
        rule = {"source": "pagerduty", "match": {"urgency": "high"}, "title": "Checkout is failing"}
        assert (await client.post("/api/v1/alert-rules", headers=stack.auth, json=rule)).status_code == 201
        raw = httpx.Request("POST", "/", json=payloads.pagerduty()).content
        headers = {"content-type": "application/json"}
        for signature in ("v1=" + "0" * 64, alert_auth.pagerduty_signature("another-secret", raw), ""):
            refused = await client.post(
                "/api/v1/alerts/pagerduty", content=raw, headers={**headers, "X-PagerDuty-Signature": signature}
            )
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["fields"] == {
                "X-PagerDuty-Signature": "the signature does not match the body"
            }
        bearer_only = await client.post("/api/v1/alerts/pagerduty", content=raw, headers={**headers, **stack.auth})
        assert bearer_only.status_code == 401, "PagerDuty is checked by its signature, not a token"
        assert await count(rt, alert_groups) == await count(rt, drafts) == 0
        async with rt.engine.connect() as conn:
            proposed = await conn.execute(select(audit_log.c.id).where(audit_log.c.action == "draft.propose"))
            assert proposed.first() is None
        signed = alert_auth.pagerduty_signature("pd-signing-secret", raw)
        accepted = await client.post(
            "/api/v1/alerts/pagerduty", content=raw, headers={**headers, "X-PagerDuty-Signature": signed}
        )
        assert accepted.status_code == 200 and len(accepted.json()["drafts_created"]) == 1


async def test_an_auto_publish_rule_posts_by_itself_after_5_s_once_across_workers(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, settings: Any
) -> None:
    """Acceptance 4: no human action; the incident is posted ~5 s after the alert with the template's words,
    once, with two workers running the auto-publish cron."""
    await setup_rule(client, runtime, auth, auto_publish_after_s=5)
    async with running_worker(settings), running_worker(settings):
        started = time.monotonic()
        sent = await client.post("/api/v1/alerts/alertmanager", headers=auth, json=payloads.alertmanager())
        assert sent.status_code == 200
        for _ in range(90):  # at most 9 s
            if await count(runtime, incidents):
                break
            await asyncio.sleep(0.1)
        elapsed_s = time.monotonic() - started
        assert await count(runtime, incidents) == 1, "not published by itself within 9 s"
        assert elapsed_s >= 5.0, f"published after {elapsed_s:.1f} s"
        await asyncio.sleep(1.0)  # a second cron pass, on either worker, must not post again
    assert await count(runtime, incidents) == 1 and await count(runtime, updates) == 1
    async with runtime.engine.connect() as conn:
        body, author, posted_at = (
            await conn.execute(select(updates.c.body, updates.c.author, updates.c.created_at))
        ).one()
        alert_at = (await conn.execute(select(alert_groups.c.first_alert_at))).scalar_one()
        state, decided_by = (await conn.execute(select(drafts.c.state, drafts.c.decided_by))).one()
    after_s = (posted_at - alert_at).total_seconds()
    print(f"auto-published {after_s:.2f} s after the alert (the cron runs every second)")
    assert 5.0 <= after_s <= bound(6.5), f"posted {after_s:.2f} s after the alert"
    assert body == TEMPLATE["message"] and author == "alerts"
    assert (state, decided_by) == ("published", "system:alerts")


async def test_senders_authenticate_with_the_source_secret_and_bad_payloads_name_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, settings: Any
) -> None:
    await setup_rule(client, runtime, auth)
    secret = alert_auth.source_token(settings.secret_key.get_secret_value(), AlertSource.ALERTMANAGER)
    other = alert_auth.source_token(settings.secret_key.get_secret_value(), AlertSource.GATUS)
    body = payloads.alertmanager()
    assert (await client.post("/api/v1/alerts/alertmanager", json=body)).status_code == 401
    assert (await client.post(f"/api/v1/alerts/alertmanager?token={other}", json=body)).status_code == 401
    bad = await client.post("/api/v1/alerts/alertmanager", headers=auth, json={"alerts": [{"status": "firing"}]})
    assert bad.status_code == 422 and "alerts.0.labels" in bad.json()["error"]["fields"]
    assert await count(runtime, drafts) == 0
    unknown = await client.post("/api/v1/alerts/nagios", headers=auth, json=body)
    assert unknown.status_code == 404 and "source" in unknown.json()["error"]["fields"]
    ok = await client.post(f"/api/v1/alerts/alertmanager?token={secret}", json=body)
    assert ok.status_code == 200 and len(ok.json()["drafts_created"]) == 1
    async with runtime.engine.connect() as conn:
        actor = (await conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "draft.propose"))).scalar()
    assert actor == "system:alerts.alertmanager"
    unmatched = payloads.alertmanager(fingerprint="other", labels={"alertname": "Disk", "service": "db"})
    assert (await client.post("/api/v1/alerts/alertmanager", headers=auth, json=unmatched)).json()["matched"] == 0


async def test_rules_travel_with_the_playbooks_yaml_and_answers_match_the_openapi_document(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    made = await setup_rule(client, runtime, auth, name="API down")
    async with runtime.engine.connect() as conn:
        text = await playbook_yaml.export_yaml(conn)
    assert "alert_rules:" in text and "API errors" in text and "service: api" in text
    async with runtime.engine.begin() as conn:
        await conn.execute(incidents.delete())
        counts = await playbook_yaml.import_yaml(conn, text)
    assert counts["alert_rules"] == 1
    (rule,) = (await client.get("/api/v1/alert-rules", headers=auth)).json()
    assert rule["id"] == made["rule"]["id"], "a rule kept by name keeps its id"
    assert rule["components"] == {made["component"]["id"]: "major_outage"}
    data = playbook_yaml.parse(text)
    data["alert_rules"][0]["playbook"] = "No such playbook"
    async with runtime.engine.begin() as conn:
        with pytest.raises(InputError) as caught:
            await playbook_yaml.import_data(conn, data)
    assert "alert_rules[0].playbook" in caught.value.fields

    doc = await served_document(client)

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, path, **kwargs)
        conforms(doc, response)
        return response

    await call("GET", "/api/v1/alert-rules", headers=auth)
    await call("POST", "/api/v1/alert-rules", headers=auth, json={"source": "nope"})
    received = await call("POST", "/api/v1/alerts/alertmanager", headers=auth, json=payloads.alertmanager())
    await call("POST", "/api/v1/alerts/pagerduty", headers=auth, json=payloads.pagerduty())
    (draft_id,) = received.json()["drafts_created"]
    await call("GET", "/api/v1/drafts?state=all", headers=auth)
    await call("GET", "/api/v1/drafts?state=maybe", headers=auth)
    await call("POST", f"/api/v1/drafts/{draft_id}/publish", headers=auth, json={"title": "API errors for some"})
    await call("POST", f"/api/v1/drafts/{draft_id}/publish", headers=auth, json={})
    await call("DELETE", f"/api/v1/drafts/{draft_id}", headers=auth)
    await call("DELETE", "/api/v1/drafts/nope", headers=auth)
    await call("DELETE", f"/api/v1/alert-rules/{rule['id']}", headers=auth)


async def test_the_console_reviews_sends_and_discards_and_a_playbook_rule_tells_its_level(database_url: str) -> None:
    """A playbook rule's draft reaches the level's contacts (not the commanders); the console previews other
    words, sends them, and the published opening puts the level's contacts on the incident."""
    async with all_providers() as providers, app_stack(providers.settings(database_url)) as stack:
        client, auth, rt = stack.client, stack.auth, stack.runtime
        async with rt.engine.begin() as conn:
            await playbook_yaml.load_sample(conn)
            book = next(b for b in await playbooks.list_playbooks(conn) if b["levels"])
            level = book["levels"][0]
            people = await contacts.level_contacts(conn, book["id"], level["level"])
        assert people, "the sample playbook's first level has contacts"
        csrf = await login(client, rt, "cmdr", "commander", email="cmdr@example.org")
        rules_page = await client.get("/console/alerts")
        secret = alert_auth.source_token(stack.settings.secret_key.get_secret_value(), AlertSource.GATUS)
        assert rules_page.status_code == 200 and f"?token={secret}" in rules_page.text
        created = await client.post(
            "/console/alerts",
            data={
                "csrf_token": csrf,
                "source": "gatus",
                "match": "group=core",
                "playbook_id": book["id"],
                "level": str(level["level"]),
            },
        )
        assert created.status_code == 303, created.text
        received = await client.post(f"/api/v1/alerts/gatus?token={secret}", json=payloads.gatus())
        (draft_id,) = received.json()["drafts_created"]
        await run_worker(stack.settings)
        addressed = {rcpt for m in providers.smtp.received for rcpt in m.rcpt_tos}
        assert {p["email"] for p in people if p["email"]} <= addressed
        assert "cmdr@example.org" not in addressed, "the level's contacts, not the commanders"

        reworded = await client.get(f"/console/drafts/{draft_id}", params={"message": "Logins fail for some of you."})
        assert "Logins fail for some of you." in reworded.text and 'data-channel="email"' in reworded.text
        sent = await client.post(
            f"/console/drafts/{draft_id}/publish",
            data={"csrf_token": csrf, "title": "", "message": "Logins fail for some of you."},
        )
        assert sent.status_code == 303 and sent.headers["location"].startswith("/console/incidents/")
        incident_id = sent.headers["location"].rsplit("/", 1)[1]
        incident = (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth)).json()
        assert incident["updates"][0]["body"] == "Logins fail for some of you."
        team = (await client.get(f"/api/v1/incidents/{incident_id}/contacts", headers=auth)).json()
        assert {t["contact_id"] for t in team} == {p["id"] for p in people}

        other = {**payloads.gatus(), "endpoint_name": "signup"}
        joined = await client.post(f"/api/v1/alerts/gatus?token={secret}", json=other)
        assert joined.json()["drafts_created"] == [], "a second alert of the same rule joins the open problem"
        first_done = await client.post(f"/api/v1/alerts/gatus?token={secret}", json=payloads.gatus("RESOLVED"))
        assert first_done.json()["drafts_created"] == [], "no resolve while one of its alerts still fires"
        all_done = await client.post(f"/api/v1/alerts/gatus?token={secret}", json={**other, "status": "RESOLVED"})
        (resolve_id,) = all_done.json()["drafts_created"]
        discarded = await client.post(f"/console/drafts/{resolve_id}/discard", data={"csrf_token": csrf})
        assert discarded.status_code == 303
        assert (await client.post(f"/console/drafts/{draft_id}/discard", data={"csrf_token": csrf})).status_code == 409
