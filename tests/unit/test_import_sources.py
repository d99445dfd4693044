"""Reading Statuspage and Cachet shapes into a ``Bundle``: what comes along, what is skipped and why."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from broadcaster.importing.cachet import Reader, number
from broadcaster.importing.cachet3 import flatten
from broadcaster.importing.components import page_order
from broadcaster.importing.fetch import SourceError
from broadcaster.importing.model import Bundle, Kind, SourceComponent, parse_time
from broadcaster.importing.progress import Silent
from broadcaster.importing.report import Report
from broadcaster.importing.sources import from_cachet, from_statuspage
from broadcaster.importing.statuspage import read_components, read_incident, read_subscriber


def bundle() -> Bundle:
    return Bundle(source="test:1", label="test")


def test_statuspage_subscribers_come_as_they_opted_in_or_are_skipped_with_why() -> None:
    b = bundle()
    every = {"c1", "c2"}
    read_subscriber({"id": "s1", "mode": "sms", "phone_number": "4155550100", "phone_country": "US"}, every, b)
    read_subscriber({"id": "s2", "mode": "email", "email": "a@example.org", "components": ["c1", "c2"]}, every, b)
    read_subscriber({"id": "s3", "mode": "webhook", "endpoint": "https://h.example/x", "components": ["c2"]}, every, b)
    read_subscriber({"id": "s4", "mode": "slack", "workspace_name": "acme"}, every, b)
    read_subscriber({"id": "s5", "mode": "email", "email": "q@example.org", "quarantined_at": "2026-01-01"}, every, b)
    assert [(s.channel, s.address, s.component_ids) for s in b.subscribers] == [
        ("sms", "+14155550100", ()),
        ("email", "a@example.org", ()),  # every component: so also the ones added later
        ("webhook", "https://h.example/x", ("c2",)),
    ]
    assert [(s.source_id, s.why.split(":")[0]) for s in b.skipped] == [
        ("s4", "a slack subscriber"),
        ("s5", "quarantined at Statuspage (it could not be reached)"),
    ]


def test_statuspage_groups_components_and_an_incidents_updates() -> None:
    items = [
        {"id": "g", "name": "Edge", "group": True, "components": ["a"], "position": 2},
        {"id": "a", "name": "CDN", "status": "partial_outage", "position": 1},
        {"id": "b", "name": "API", "status": "operational", "position": 1, "group_id": None},
    ]
    components = read_components(items)
    assert [(c.name, c.group_id, c.is_group) for c in page_order(components)] == [
        ("API", None, False),
        ("Edge", None, True),
        ("CDN", "g", False),  # a group's members follow it, found from its "components" list
    ]
    b = bundle()
    read_incident(
        {
            "id": "i1",
            "name": "Maintenance",
            "status": "completed",
            "scheduled_for": "2026-01-01T00:00:00Z",
            "created_at": "2025-12-30T10:00:00.000-05:00",
            "incident_updates": [
                {"id": "u2", "status": "completed", "body": "Done", "created_at": "2026-01-01T01:00:00Z"},
                {
                    "id": "u1",
                    "status": "in_progress",
                    "body": "Started",
                    "created_at": "2026-01-01T00:00:00Z",
                    "affected_components": [
                        {"code": "a", "old_status": "operational", "new_status": "under_maintenance"}
                    ],
                },
                {"id": "u0", "status": "scheduled", "body": "no time"},
            ],
        },
        b,
    )
    [incident] = b.incidents
    assert incident.kind == "maintenance" and incident.created_at == datetime(2025, 12, 30, 15, tzinfo=UTC)
    assert [(u.source_id, [c.new_status for c in u.changes]) for u in incident.updates] == [
        ("u2", []),
        ("u1", ["under_maintenance"]),
    ]
    assert [(s.kind, s.source_id) for s in b.skipped] == [(Kind.UPDATES, "u0")]


def test_cachet_numbers_become_our_words_in_the_pages_time_zone() -> None:
    b = bundle()
    reader = Reader(b, ZoneInfo("Europe/Berlin"))
    reader.components([{"id": n, "name": f"C{n}", "status": n, "order": n} for n in (1, 2, 3, 4)])
    reader.components([{"id": 9, "name": "Off", "status": 1, "enabled": False}])
    assert [c.status for c in b.components] == ["operational", "degraded_performance", "partial_outage", "major_outage"]
    reader.incident(
        {
            "id": 7,
            "name": "Down",
            "status": 4,
            "component_id": 2,
            "message": "Looking",
            "occurred_at": "2026-07-01 12:00:00",
            "updates": [
                {"id": 72, "status": 4, "message": "Fixed", "created_at": "2026-07-01 13:00:00"},
                {"id": 71, "status": 3, "message": "Watching", "created_at": "2026-07-01 12:30:00"},
            ],
        }
    )
    reader.incident({"id": 8, "name": "Hidden", "status": 1, "visible": 0, "occurred_at": "2026-07-01 12:00:00"})
    [incident] = b.incidents
    assert [(u.status, u.created_at.isoformat()) for u in incident.updates] == [
        ("investigating", "2026-07-01T10:00:00+00:00"),  # Berlin is UTC+2 in July
        ("monitoring", "2026-07-01T10:30:00+00:00"),
        ("resolved", "2026-07-01T11:00:00+00:00"),
    ]
    assert incident.status == "resolved" and incident.component_ids == ("component:2",)
    assert [(s.source_id, s.why) for s in b.skipped] == [
        ("component:9", "disabled in Cachet (not on its page)"),
        ("incident:8", "hidden in Cachet (not visible)"),
    ]
    reader.subscriber({"id": 1, "email": "x@example.org", "verified_at": None})
    reader.subscriber({"id": 2, "email": "y@example.org", "verified_at": "2026-01-01 00:00:00", "global": True})
    reader.subscriber({"id": 3, "email": "z@example.org", "verified": True, "subscriptions": [{"component_id": 4}]})
    assert [(s.address, s.component_ids) for s in b.subscribers] == [
        ("y@example.org", ()),
        ("z@example.org", ("component:4",)),
    ]


def test_cachet_3_resources_flatten_into_2_shapes() -> None:
    included = {("updates", "5"): {"id": "5", "type": "updates", "attributes": {"status": {"value": 3}}}}
    resource = {
        "id": "1",
        "type": "incidents",
        "attributes": {
            "name": "X",
            "status": {"human": "Fixed", "value": 4},
            "created": {"string": "2026-01-01 00:00:00"},
        },
        "relationships": {"updates": {"data": [{"type": "updates", "id": "5"}]}},
    }
    flat = flatten(resource, included)
    assert flat["created_at"] == "2026-01-01 00:00:00" and number(flat["status"]) == 4
    assert [number(u["status"]) for u in flat["updates"]] == [3]


def test_times_without_a_zone_are_read_in_the_zone_given() -> None:
    assert parse_time("2026-01-01 09:00:00", ZoneInfo("America/New_York")) == datetime(2026, 1, 1, 14, tzinfo=UTC)
    assert parse_time("2026-01-01T09:00:00.123+01:00") == datetime(2026, 1, 1, 8, 0, 0, 123000, tzinfo=UTC)
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_the_report_counts_per_kind_and_says_why_things_were_skipped() -> None:
    report = Report("Statuspage page p1", dry_run=True)
    report.created(Kind.COMPONENTS)
    report.unchanged(Kind.COMPONENTS)
    for n in range(3):
        report.skipped(Kind.SUBSCRIBERS, f"s{n}", "a slack subscriber")
    lines = report.lines()
    assert lines[0] == "dry run (nothing written): import from Statuspage page p1"
    assert "  components    1 created, 0 updated, 1 unchanged, 0 skipped" in lines
    assert "  skipped subscribers 3 (s0 and others): a slack subscriber" in lines
    assert report.counts() == {
        "components": {"created": 1, "updated": 0, "unchanged": 1, "skipped": 0},
        "subscribers": {"created": 0, "updated": 0, "unchanged": 0, "skipped": 3},
    }


async def test_bad_arguments_fail_before_any_request() -> None:
    never = httpx.MockTransport(lambda r: pytest.fail("no request expected"))
    with pytest.raises(SourceError, match="API key is empty"):
        await from_statuspage("page", " ", Silent(), transport=never)
    with pytest.raises(SourceError, match="unknown time zone 'Mars/Base'"):
        await from_cachet("https://cachet.example", None, Silent(), zone="Mars/Base", transport=never)


async def test_cachet_is_asked_which_api_it_speaks() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/ping":
            return httpx.Response(404)
        if request.url.path == "/api/ping":
            return httpx.Response(200, json={"data": "Pong!"})
        return httpx.Response(200, json={"data": [], "links": {"next": None}})

    got = await from_cachet("https://cachet.example", None, Silent(), transport=httpx.MockTransport(answer))
    assert got.label == "Cachet 3.x at https://cachet.example" and got.components == []


def test_a_component_without_a_known_group_stays_at_the_top() -> None:
    lone = SourceComponent("c", "Lone", group_id="missing", position=3)
    assert page_order([lone]) == [lone]
