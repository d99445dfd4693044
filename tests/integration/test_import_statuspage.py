"""Moving in from Statuspage: the CLI against the local Statuspage app (2 groups, 7 components, 30 incidents
of which 2 maintenances, 500 subscribers), then a new incident posted here reaches every one of them."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from broadcaster.db import deliveries, subscribers
from broadcaster.domain.page_brand import BrandPatch, load_brand, save_brand
from broadcaster.importing.progress import Silent
from broadcaster.importing.sources import from_statuspage
from broadcaster.importing.writer import write_bundle
from broadcaster.views.public import load_snapshot
from sandbox.providers.statuspage import FakeStatuspage
from sandbox.serve import serve_app
from tests.conftest import run_worker
from tests.support.importing import Receivers, receiving_stack, run_cli, table_counts


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def cli_args(fake: FakeStatuspage, base_url: str, *extra: str) -> list[str]:
    return ["import", "statuspage", "--page-id", fake.page_id, "--api-key", "-", "--base-url", base_url, *extra]


def report_counts(stdout: str) -> dict[str, tuple[int, int, int, int]]:
    """{kind: (created, updated, unchanged, skipped)} from the printed report."""
    pattern = r"^\s+(\w+)\s+(\d+) created, (\d+) updated, (\d+) unchanged, (\d+) skipped$"
    return {m[0]: (int(m[1]), int(m[2]), int(m[3]), int(m[4])) for m in re.findall(pattern, stdout, re.M)}


async def check_page(r: Receivers, fake: FakeStatuspage) -> dict[str, str]:
    """Everything the source had is on the page, the history, the v2 JSON and the subscriber list;
    returns {source component id: local id}."""
    client, auth = r.stack.client, r.stack.auth
    source_components = {c["name"]: c for c in fake.components}
    v2 = (await client.get("/api/v2/components.json")).json()["components"]
    assert sorted(c["name"] for c in v2) == sorted(source_components)
    local_of = {source_components[c["name"]]["id"]: c["id"] for c in v2}
    for c in v2:
        source = source_components[c["name"]]
        assert (c["group"], c["status"]) == (source["group"], source["status"])
        if c["group"]:
            assert sorted(c["components"]) == sorted(local_of[i] for i in source["components"])
        else:
            assert c["group_id"] == (local_of[source["group_id"]] if source["group_id"] else None)
    front = (await client.get("/")).text
    assert all(name in front for name in [*source_components, fake.page["name"]])

    incidents = (await client.get("/api/v2/incidents.json")).json()["incidents"]
    maintenances = (await client.get("/api/v2/scheduled-maintenances.json")).json()["scheduled_maintenances"]
    assert (len(incidents), len(maintenances)) == (28, 2)
    imported = {i["name"]: i for i in incidents + maintenances}
    assert len(imported) == 30
    for source in fake.incidents:
        mine = imported[source["name"]]
        assert mine["status"] == source["status"] and mine["impact"] == source["impact"]
        assert at(mine["created_at"]) == at(source["created_at"])
        # every update, newest first, at its own time, with the components it changed
        assert [(u["status"], at(u["created_at"]), u["body"]) for u in mine["incident_updates"]] == [
            (u["status"], at(u["created_at"]), u["body"]) for u in source["incident_updates"]
        ]
        for mine_u, source_u in zip(mine["incident_updates"], source["incident_updates"], strict=True):
            changes = [(c["code"], c["new_status"]) for c in mine_u["affected_components"] or []]
            assert changes == [(local_of[c["code"]], c["new_status"]) for c in source_u["affected_components"] or []]
        assert sorted(c["id"] for c in mine["components"]) == sorted(local_of[c["id"]] for c in source["components"])
    history = (await client.get("/history")).text + (await client.get("/history/2")).text
    assert all(s["name"] in history for s in fake.incidents)
    # the uptime bars: an outage on the day it happened, and only where one happened
    async with r.stack.runtime.engine.connect() as conn:
        uptime = (await load_snapshot(conn, r.stack.settings)).uptime
    hit: dict[str, set[str]] = {}
    for source in fake.incidents:
        began: dict[str, datetime] = {}
        for u in source["incident_updates"][::-1]:
            for c in u["affected_components"] or []:
                if c["new_status"] in ("partial_outage", "major_outage"):
                    began[c["code"]] = at(u["created_at"])
                elif c["code"] in began:  # back to operational: every day from the start to here
                    start, end = began.pop(c["code"]).date(), at(u["created_at"]).date()
                    days = {(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)}
                    hit.setdefault(local_of[c["code"]], set()).update(days)
        for code, since in began.items():  # still open: up to today
            start, end = since.date(), datetime.now(UTC).date()
            days = {(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)}
            hit.setdefault(local_of[code], set()).update(days)
    for cid, bars in uptime.items():
        worst_days = {d.day.isoformat() for d in bars.days if d.worst in ("partial_outage", "major_outage")}
        assert worst_days == hit.get(cid, set()), cid
        assert (bars.percent is not None and bars.percent < 100) == bool(hit.get(cid))

    listed = (await client.get("/api/v1/subscribers?limit=1000", headers=auth)).json()
    assert listed["total"] == 500
    mine_by_address = {s["address"]: s for s in listed["subscribers"]}
    for source in fake.subscribers:
        mode = source["mode"]
        address = {"email": source["email"], "sms": f"+1{source['phone_number']}", "webhook": source["endpoint"]}
        mine = mine_by_address[address[mode]]
        assert mine["channel"] == mode and mine["confirmed"] is True
        assert sorted(mine["components"]) == sorted(local_of[c] for c in source["components"])
        assert at(mine["created_at"]) == at(source["created_at"])
    return local_of


@pytest.mark.slow
async def test_a_statuspage_page_moves_in_and_its_subscribers_hear_the_next_incident(database_url: str) -> None:
    async with receiving_stack(database_url) as r:
        fake = FakeStatuspage.sample(webhook_url=r.hooks_url)
        async with serve_app(fake.app) as api:
            result = await run_cli(r.stack.settings, *cli_args(fake, api), stdin=fake.api_key + "\n")
            assert result.returncode == 0, result.stderr
            counts = report_counts(result.stdout)
            assert counts["groups"][0] == 2 and counts["components"][0] == 7
            assert counts["incidents"][0] == 28 and counts["maintenances"][0] == 2
            assert counts["updates"][0] == sum(len(i["incident_updates"]) for i in fake.incidents)
            assert counts["subscribers"] == (500, 0, 0, 0) and counts["page"] == (1, 0, 0, 0)
            assert fake.api_key not in result.stdout + result.stderr
            assert all(authorized for _, _, authorized in fake.requests)

            # history is not news: nothing queued, nothing sent, no confirmation asked of anyone
            await run_worker(r.stack.settings)
            rows = await table_counts(r.stack.runtime.engine)
            assert (rows["outbox"], rows["deliveries"]) == (0, 0)
            assert r.received() == {"email": [], "sms": [], "webhook": []}

            local_of = await check_page(r, fake)

            # a new incident goes through the normal path and reaches every imported subscriber
            everything = {local_of[c["id"]]: "major_outage" for c in fake.components if not c["group"]}
            body = {
                "title": "After the move",
                "status": "investigating",
                "message": "Our first incident here.",
                "components": everything,
            }
            posted = await r.stack.client.post("/api/v1/incidents", headers=r.stack.auth, json=body)
            assert posted.status_code == 201, posted.text
            await run_worker(r.stack.settings, timeout_s=60)
            received = r.received()
            modes = Counter(s["mode"] for s in fake.subscribers)
            assert {k: len(v) for k, v in received.items()} == {k: modes[k] for k in ("email", "sms", "webhook")}
            assert len(set(received["email"])) == modes["email"] and len(set(received["sms"])) == modes["sms"]
            assert all("After the move" in str(m.message["Subject"]) for m in r.smtp.received)
            async with r.stack.runtime.engine.connect() as conn:
                sent = Counter(
                    (
                        await conn.execute(
                            select(deliveries.c.channel).where(
                                deliveries.c.update_id == posted.json()["update"]["id"],
                                deliveries.c.recipient != "*",
                                deliveries.c.state == "sent",
                            )
                        )
                    ).scalars()
                )
                unconfirmed = (await conn.execute(select(subscribers).where(subscribers.c.confirmed.is_(False)))).all()
            assert sent == {k: modes[k] for k in ("email", "sms", "webhook")}  # one row per subscriber, all sent
            assert unconfirmed == []


async def test_the_same_import_twice_creates_nothing_the_second_time(database_url: str) -> None:
    async with receiving_stack(database_url) as r:
        fake = FakeStatuspage.sample(subscribers=60, webhook_url=r.hooks_url)
        async with serve_app(fake.app) as api:
            first = await run_cli(r.stack.settings, *cli_args(fake, api), stdin=fake.api_key)
            assert first.returncode == 0, first.stderr
            rows = await table_counts(r.stack.runtime.engine)
            second = await run_cli(r.stack.settings, *cli_args(fake, api), stdin=fake.api_key)
            assert second.returncode == 0, second.stderr
            counts = report_counts(second.stdout)
            assert {kind: c[0] for kind, c in counts.items()} == dict.fromkeys(counts, 0)
            assert counts["incidents"][2] == 28 and counts["updates"][1] == 0 and counts["subscribers"][2] == 60
            assert await table_counts(r.stack.runtime.engine) == rows  # not one row more, anywhere


async def _import(r: Receivers, fake: FakeStatuspage, api: str, *, dry_run: bool = False) -> dict[str, Any]:
    bundle = await from_statuspage(fake.page_id, fake.api_key, Silent(), base_url=api)
    report = await write_bundle(r.stack.runtime.engine, bundle, r.stack.settings, actor="cli:test", dry_run=dry_run)
    return {kind: (t.created, t.updated, t.unchanged, len(t.skipped)) for kind, t in report.tallies.items()}


async def test_a_second_run_takes_what_changed_at_the_source_and_a_dry_run_writes_nothing(database_url: str) -> None:
    async with receiving_stack(database_url) as r:
        fake = FakeStatuspage.sample(subscribers=20, incidents=6, maintenances=1, webhook_url=r.hooks_url)
        async with serve_app(fake.app) as api:
            dry = await _import(r, fake, api, dry_run=True)
            assert dry["incidents"] == (5, 0, 0, 0) and dry["subscribers"] == (20, 0, 0, 0)
            assert set((await table_counts(r.stack.runtime.engine)).values()) == {0}
            assert await _import(r, fake, api) == dry  # the dry run's report was the real one

            open_incident = next(i for i in fake.incidents if i["status"] != "resolved" and not i["scheduled_for"])
            open_incident["incident_updates"][0]["body"] = "Corrected wording."
            oldest = fake.incidents[-1]  # resolved long ago: its first update put a component in an outage
            oldest["incident_updates"][-1]["body"] = "Reworded, weeks later."
            history = (await table_counts(r.stack.runtime.engine))["status_changes"]
            fake.subscribers.append({**fake.subscribers[0], "id": "newsub000001", "email": "late@example.org"})
            fake.subscribers.append({**fake.subscribers[0], "id": "slack0000001", "mode": "slack", "email": None})
            again = await _import(r, fake, api)
            assert again["incidents"] == (0, 2, 3, 0) and again["updates"][:2] == (0, 2)
            assert again["subscribers"] == (1, 0, 20, 1)
            shown = (await r.stack.client.get("/api/v2/incidents.json")).json()["incidents"]
            bodies = [u["body"] for i in shown for u in i["incident_updates"]]
            assert "Corrected wording." in bodies and "Reworded, weeks later." in bodies
            # new words on old updates leave the component history and today's statuses alone
            assert (await table_counts(r.stack.runtime.engine))["status_changes"] == history
            async with r.stack.runtime.engine.begin() as conn:  # renamed here: a later import keeps that
                await save_brand(conn, BrandPatch(name="Renamed here"))
            assert (await _import(r, fake, api))["page"] == (0, 0, 1, 0)
            async with r.stack.runtime.engine.connect() as conn:
                assert (await load_brand(conn)).name == "Renamed here"
            now = {
                c["name"]: c["status"]
                for c in (await r.stack.client.get("/api/v2/components.json")).json()["components"]
            }
            assert now == {c["name"]: c["status"] for c in fake.components}


async def test_a_refused_key_or_an_unreachable_api_is_one_clear_line(database_url: str) -> None:
    async with receiving_stack(database_url) as r:
        fake = FakeStatuspage.sample(subscribers=1, incidents=1, maintenances=0)
        async with serve_app(fake.app) as api:
            refused = await run_cli(r.stack.settings, *cli_args(fake, api), stdin="wrong-key-123\n")
            fake.throttle(2)  # Statuspage allows one request a second: a 429 is waited out
            ok = await run_cli(r.stack.settings, *cli_args(fake, api, "--dry-run"), stdin=fake.api_key)
        unreachable = await run_cli(r.stack.settings, *cli_args(fake, api), stdin=fake.api_key)
    assert refused.returncode == 1 and "refused the credentials (HTTP 401)" in refused.stderr
    assert "Traceback" not in refused.stderr + unreachable.stderr and "wrong-key-123" not in refused.stderr
    assert ok.returncode == 0 and ok.stdout.startswith("dry run (nothing written)"), ok.stderr
    assert unreachable.returncode == 1 and "could not reach Statuspage" in unreachable.stderr
    assert fake.api_key not in unreachable.stderr
