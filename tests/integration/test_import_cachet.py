"""Moving in from Cachet: the CLI against the local Cachet app in 2.x shapes (and the 3.x API in-process),
statuses mapped to ours, Cachet's zone-less times read in its time zone, and a new incident reaching every
imported subscriber."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from broadcaster.importing.progress import Silent
from broadcaster.importing.sources import from_cachet
from broadcaster.importing.writer import write_bundle
from sandbox.providers.cachet import FakeCachet
from sandbox.serve import serve_app
from tests.conftest import run_worker
from tests.integration.test_import_statuspage import report_counts
from tests.support.importing import Receivers, receiving_stack, run_cli, table_counts

OURS = {1: "operational", 2: "degraded_performance", 3: "partial_outage", 4: "major_outage"}
INCIDENT = {0: "scheduled", 1: "investigating", 2: "identified", 3: "monitoring", 4: "resolved"}


def cachet_time(value: str, fake: FakeCachet) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(fake.zone))


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def check_page(r: Receivers, fake: FakeCachet) -> dict[int, str]:
    """The page, v2 JSON and subscriber list hold what Cachet had, mapped; returns {Cachet component id: local id}."""
    client = r.stack.client
    v2 = (await client.get("/api/v2/components.json")).json()["components"]
    by_name = {c["name"]: c for c in v2}
    assert sorted(by_name) == sorted([g["name"] for g in fake.groups] + [c["name"] for c in fake.components])
    local_of = {c["id"]: by_name[c["name"]]["id"] for c in fake.components}
    for c in fake.components:
        mine = by_name[c["name"]]
        assert mine["status"] == OURS[c["status"]]
        group = next((g["name"] for g in fake.groups if g["id"] == c["group_id"]), None)
        assert mine["group_id"] == (by_name[group]["id"] if group else None)

    incidents = (await client.get("/api/v2/incidents.json")).json()["incidents"]
    maintenances = (await client.get("/api/v2/scheduled-maintenances.json")).json()["scheduled_maintenances"]
    mine_by_name = {i["name"]: i for i in incidents + maintenances}
    for source in fake.incidents:
        mine = mine_by_name[source["name"]]
        oldest_first = mine["incident_updates"][::-1]
        opening, later = oldest_first[0], oldest_first[1:]
        assert at(opening["created_at"]) == cachet_time(source["occurred_at"], fake)
        assert opening["body"] == source["message"]
        assert [(u["status"], at(u["created_at"]), u["body"]) for u in later] == [
            (INCIDENT[u["status"]], cachet_time(u["created_at"], fake), u["message"]) for u in source["updates"][::-1]
        ]
        assert mine["status"] == INCIDENT[source["status"]]
        assert [c["id"] for c in mine["components"]] == [local_of[source["component_id"]]]
    for schedule in fake.schedules:
        mine = mine_by_name[schedule["name"]]
        assert (mine["status"], mine["impact"]) == ("completed", "maintenance")
        assert at(mine["scheduled_for"]) == cachet_time(schedule["scheduled_at"], fake)
    scheduled = next(i for name, i in mine_by_name.items() if name.startswith("Incident 6 "))
    assert scheduled["status"] == "scheduled" and "scheduled_for" in scheduled  # a 2.3 scheduled incident

    listed = (await client.get("/api/v1/subscribers?limit=1000", headers=r.stack.auth)).json()
    verified = [s for s in fake.subscribers if s["verified_at"]]
    assert listed["total"] == len(verified)
    mine = {s["address"]: s for s in listed["subscribers"]}
    for source in verified:
        chosen = sorted(local_of[x["component_id"]] for x in source["subscriptions"])
        assert mine[source["email"]]["components"] == sorted(chosen) and mine[source["email"]]["confirmed"]
    return local_of


async def test_a_cachet_2_page_moves_in_with_its_statuses_mapped(database_url: str) -> None:
    async with receiving_stack(database_url) as r:
        fake = FakeCachet.sample(version=2)
        async with serve_app(fake.app) as url:
            args = ["import", "cachet", "--url", url, "--token", "-", "--time-zone", fake.zone]
            result = await run_cli(r.stack.settings, *args, stdin=fake.token)
            assert result.returncode == 0, result.stderr
            counts = report_counts(result.stdout)
            assert counts["components"] == (7, 0, 0, 0) and counts["groups"] == (2, 0, 0, 0)
            assert counts["incidents"] == (11, 0, 0, 0) and counts["maintenances"] == (3, 0, 0, 0)
            assert counts["subscribers"] == (50, 0, 0, 10)  # the 10 never verified
            assert "never verified in Cachet" in result.stdout and fake.token not in result.stdout + result.stderr
            local_of = await check_page(r, fake)
            rows = await table_counts(r.stack.runtime.engine)
            assert (rows["outbox"], rows["deliveries"]) == (0, 0)

            again = await run_cli(r.stack.settings, *args, stdin=fake.token)
            assert {k: c[0] for k, c in report_counts(again.stdout).items()} == dict.fromkeys(counts, 0)
            assert await table_counts(r.stack.runtime.engine) == rows

        body = {
            "title": "First incident after Cachet",
            "status": "identified",
            "message": "Storage is slow.",
            "components": {local_of[5]: "degraded_performance"},
        }
        assert (await r.stack.client.post("/api/v1/incidents", headers=r.stack.auth, json=body)).status_code == 201
        await run_worker(r.stack.settings)
        expected = sorted(
            s["email"]
            for s in fake.subscribers
            if s["verified_at"] and (s["global"] or 5 in [x["component_id"] for x in s["subscriptions"]])
        )
        assert sorted(r.received()["email"]) == expected  # everyone for every component, and those who chose it


async def test_the_cachet_3_api_reads_the_same(database_url: str) -> None:
    async with receiving_stack(database_url) as r:
        fake = FakeCachet.sample(version=3, subscribers=12)
        async with serve_app(fake.app) as url:
            bundle = await from_cachet(url, fake.token, Silent(), zone=fake.zone)
            public = await from_cachet(url, None, Silent(), api="3", zone=fake.zone)
        assert bundle.label.startswith("Cachet 3.x")
        report = await write_bundle(r.stack.runtime.engine, bundle, r.stack.settings, actor="cli:test")
        tallies = {k: (t.created, len(t.skipped)) for k, t in report.tallies.items() if t.total}
        assert tallies == {
            "groups": (2, 0),
            "components": (7, 0),
            "incidents": (11, 0),
            "maintenances": (3, 0),
            "updates": (sum(len(i["updates"]) + 1 for i in fake.incidents) + 2, 0),
            "subscribers": (10, 2),
        }
        await check_page(r, fake)
        assert public.subscribers == [] and public.skipped[-1].why.startswith("no --token")
        assert all(ok for path, _, ok in fake.requests if path == "/api/subscribers")  # asked with the token only
