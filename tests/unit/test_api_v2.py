"""Statuspage v2 shapes: field names and order against a fixture written from the docs; the indicator rule."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broadcaster.views import statuspage_v2 as v2
from broadcaster.views.public import IncidentView, Snapshot, UpdateView, as_published, update_view
from broadcaster.views.uptime import daily_uptime

FIELDS = json.loads((Path(__file__).parent.parent / "fixtures" / "statuspage_v2_fields.json").read_text())
T0 = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)


def component(cid: str, status: str = "operational", group_id: str | None = None, is_group: bool = False) -> dict:
    return {
        "id": cid,
        "name": cid.upper(),
        "status": status,
        "created_at": T0,
        "updated_at": T0,
        "position": 1,
        "description": None,
        "showcase": True,
        "start_date": "2026-11-23",
        "group_id": group_id,
        "is_group": is_group,
        "only_show_if_degraded": False,
    }


def incident(
    iid: str,
    kind: str = "incident",
    status: str = "investigating",
    impact: str = "minor",
    components: tuple[str, ...] = ("api",),
) -> IncidentView:
    row: dict[str, Any] = {
        "id": iid,
        "kind": kind,
        "name": f"Incident {iid}",
        "status": status,
        "impact": impact,
        "created_at": T0,
        "updated_at": T0,
        "started_at": T0,
        "monitoring_at": None,
        "resolved_at": None,
        "scheduled_for": T0 + timedelta(hours=1) if kind == "maintenance" else None,
        "scheduled_until": T0 + timedelta(hours=2) if kind == "maintenance" else None,
    }
    update = UpdateView(
        id=f"u{iid}",
        incident_id=iid,
        number=1,
        status=status,
        body_html="<p>Hi <b>there</b></p>",
        body_text="Hi there",
        created_at=T0,
        display_at=T0,
        deliver_notifications=True,
        changes=(
            {
                "code": "api",
                "name": "Platform - API",
                "old_status": "operational",
                "new_status": "degraded_performance",
            },
        ),
    )
    return IncidentView(row=row, updates=(update,), component_ids=components)


def snapshot() -> Snapshot:
    return Snapshot(
        page={
            "id": "pg",
            "name": "Example",
            "url": "https://status.example.com",
            "time_zone": "Etc/UTC",
            "updated_at": T0,
        },
        components=(
            component("platform", is_group=True),
            component("api", "degraded_performance", "platform"),
            component("web"),
        ),
        incidents=(incident("open1"), incident("done1", status="resolved")),
        maintenances=(
            incident("m1", kind="maintenance", status="scheduled", impact="maintenance"),
            incident("m2", kind="maintenance", status="in_progress", impact="maintenance"),
            incident("m3", kind="maintenance", status="completed", impact="maintenance"),
        ),
    )


@pytest.mark.parametrize("path", list(FIELDS["endpoints"]))
def test_top_level_keys(path: str) -> None:
    body = v2.ENDPOINTS[path](snapshot())
    assert list(body) == FIELDS["endpoints"][path]
    assert list(body["page"]) == FIELDS["page"]


def check_timestamps(obj: Any) -> None:
    pattern = re.compile(FIELDS["timestamp_pattern"])
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.endswith("_at") or key in ("scheduled_for", "scheduled_until"):
                assert value is None or pattern.match(value), (key, value)
            check_timestamps(value)
    elif isinstance(obj, list):
        for item in obj:
            check_timestamps(item)


def test_summary_objects_match_the_documented_fields() -> None:
    body = v2.summary(snapshot())
    assert list(body["status"]) == FIELDS["status"]
    for c in body["components"]:
        assert list(c) == FIELDS["group_component" if c["group"] else "component"]
        assert c["status"] in FIELDS["enums"]["component_status"]
    group = next(c for c in body["components"] if c["group"])
    assert group["components"] == ["api"]
    assert [i["id"] for i in body["incidents"]] == ["open1"], "resolved incidents never appear in the summary"
    for item in body["incidents"]:
        assert list(item) == FIELDS["incident"]
        assert item["impact"] in FIELDS["enums"]["incident_impact"]
        for c in item["components"]:
            assert list(c) == FIELDS["component"]
        for u in item["incident_updates"]:
            assert list(u) == FIELDS["incident_update"]
            for a in u["affected_components"]:
                assert list(a) == FIELDS["affected_component"]
    assert [m["id"] for m in body["scheduled_maintenances"]] == ["m2", "m1"]
    for m in body["scheduled_maintenances"]:
        assert list(m) == FIELDS["scheduled_maintenance"]
        assert m["status"] in FIELDS["enums"]["maintenance_status"]
        assert m["impact"] in FIELDS["enums"]["maintenance_impact"]
    check_timestamps(body)


def test_incidents_json_lists_resolved_too() -> None:
    body = v2.incidents(snapshot())
    assert [i["id"] for i in body["incidents"]] == ["open1", "done1"]
    for item in body["incidents"]:
        assert list(item) == FIELDS["incident"]
    assert [m["id"] for m in v2.upcoming(snapshot())["scheduled_maintenances"]] == ["m1"]
    assert [m["id"] for m in v2.active(snapshot())["scheduled_maintenances"]] == ["m2"]
    assert len(v2.scheduled_maintenances(snapshot())["scheduled_maintenances"]) == 3


def test_update_without_component_changes_has_null_affected_components() -> None:
    update = UpdateView(
        id="u",
        incident_id="i",
        number=1,
        status="investigating",
        body_html="",
        body_text="",
        created_at=T0,
        display_at=T0,
        deliver_notifications=True,
        changes=(),
    )
    assert v2.update_json(update)["affected_components"] is None


@pytest.mark.parametrize("stored", [True, False])
def test_deliver_notifications_is_the_stored_flag(stored: bool) -> None:
    row = {
        "id": "u",
        "incident_id": "i",
        "number": 1,
        "status": "investigating",
        "body": "Quiet.",
        "created_at": T0,
        "display_at": T0,
        "deliver_notifications": stored,
    }
    assert v2.update_json(update_view(row, []))["deliver_notifications"] is stored


def update_row(uid: str, number: int, status: str, minutes: int, public: bool = True) -> dict[str, Any]:
    return {
        "id": uid,
        "incident_id": "i",
        "number": number,
        "status": status,
        "body": uid,
        "public": public,
        "created_at": T0 + timedelta(minutes=minutes),
        "next_update_at": None,
    }


def change(component: str, new_status: str) -> dict[str, Any]:
    return {"component_id": component, "old_status": "operational", "new_status": new_status}


def test_incident_is_shown_as_its_public_updates_left_it() -> None:
    row: dict[str, Any] = {
        "id": "i",
        "kind": "incident",
        "status": "resolved",
        "impact": "critical",
        "impact_override": False,
        "updated_at": T0 + timedelta(minutes=30),
        "monitoring_at": T0 + timedelta(minutes=20),
        "resolved_at": T0 + timedelta(minutes=30),
    }
    shown = [update_row("u2", 2, "monitoring", 10), update_row("u1", 1, "investigating", 0)]
    hidden = [update_row("u3", 3, "resolved", 30, public=False)]
    changes = {"u1": [change("api", "degraded_performance")], "u2": [], "u3": [change("db", "major_outage")]}
    published, linked = as_published(row, shown, hidden, changes, ["api", "db", "web"])
    assert published["status"] == "monitoring" and published["resolved_at"] is None
    assert published["updated_at"] == published["monitoring_at"] == T0 + timedelta(minutes=10)
    assert published["impact"] == "minor", "the hidden major outage did not raise the public impact"
    assert linked == ["api", "web"], "a component named only by a hidden update is left out"
    assert row["status"] == "resolved", "the stored row is not changed"
    assert as_published({**row, "impact_override": True}, shown, hidden, changes, [])[0]["impact"] == "critical"


OK, D, P, M, U = "operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"
INDICATOR_CASES = [
    ([], (), ("none", "All Systems Operational")),
    ([OK, OK], (), ("none", "All Systems Operational")),
    ([M, M], (), ("critical", "Major System Outage")),
    ([M, OK], (), ("major", "Partial System Outage")),
    ([P, P], (), ("major", "Partial System Outage")),
    ([P, OK], (), ("minor", "Minor Service Outage")),
    ([P, D], (), ("minor", "Minor Service Outage")),
    ([D, D], (), ("minor", "Degraded System Service")),
    ([D, OK], (), ("minor", "Partially Degraded Service")),
    ([U, OK], (), ("maintenance", "Service Under Maintenance")),
    ([D, U], (), ("minor", "Partially Degraded Service")),
    # a single component names the page directly
    ([D], (), ("minor", "Partially Degraded Service")),
    ([P], (), ("major", "Partial System Outage")),
    ([M], (), ("critical", "Major System Outage")),
    ([U], (), ("maintenance", "Service Under Maintenance")),
    # an active incident raises the indicator to at least its impact
    ([OK, OK], ("minor",), ("minor", "Minor Service Outage")),
    ([OK, OK], ("major",), ("major", "Partial System Outage")),
    ([OK, OK], ("critical", "minor"), ("critical", "Major System Outage")),
    ([OK, OK], ("none",), ("none", "All Systems Operational")),
    ([M, M], ("minor",), ("critical", "Major System Outage")),
    ([U, OK], ("minor",), ("minor", "Minor Service Outage")),
]


@pytest.mark.parametrize(("statuses", "impacts", "expected"), INDICATOR_CASES)
def test_indicator_rule(statuses: list[str], impacts: tuple[str, ...], expected: tuple[str, str]) -> None:
    assert v2.page_status(statuses, impacts) == expected
    assert expected[0] in FIELDS["enums"]["indicator"] and expected[1] in FIELDS["enums"]["description"]


def test_active_maintenance_shows_when_nothing_worse() -> None:
    assert v2.page_status([OK], (), maintenance_active=True) == ("maintenance", "Service Under Maintenance")
    assert v2.page_status([D, OK], (), maintenance_active=True)[0] == "minor"


def test_status_json_ignores_groups() -> None:
    snap = snapshot()
    assert v2.status_json(snap) == {"indicator": "minor", "description": "Partially Degraded Service"}


def test_daily_uptime_weights_outages() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    start = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    changes = [(start + timedelta(hours=6), M), (start + timedelta(hours=12), P), (start + timedelta(hours=18), OK)]
    result = daily_uptime(changes, OK, now, days=3)
    first, yesterday, today = result.days
    assert first.uptime == 1.0 and first.worst == OK and first.level == 0
    assert yesterday.worst == M and yesterday.level == 4
    assert yesterday.uptime == pytest.approx(1 - (6 + 6 * 0.3) / 24)
    assert today.uptime == 1.0
    assert result.percent == pytest.approx(100 * (60 - 6 - 1.8) / 60)


def test_daily_uptime_before_creation_has_no_data() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    result = daily_uptime([(now - timedelta(hours=2), OK)], None, now, days=2)
    assert result.days[0].uptime is None and result.days[0].level == -1
    assert result.days[1].uptime == 1.0
