"""The post-incident report's figures from known timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from broadcaster.crisis.report import compute, duration, outage_start, to_markdown

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def incident(**extra: Any) -> dict[str, Any]:
    return {
        "id": "inc1",
        "name": "Checkout down",
        "kind": "incident",
        "impact": "critical",
        "status": "resolved",
        "started_at": at(0),
        "resolved_at": at(95),
        **extra,
    }


UPDATES = [
    # number, status, created, promised next
    {"number": 1, "status": "investigating", "created_at": at(4), "next_update_at": at(34), "body": "a"},
    {"number": 2, "status": "identified", "created_at": at(30), "next_update_at": at(60), "body": "b"},
    {"number": 3, "status": "monitoring", "created_at": at(72), "next_update_at": None, "body": "c"},
    {"number": 4, "status": "resolved", "created_at": at(95), "next_update_at": None, "body": "d"},
]


def test_first_update_and_intervals_against_promises() -> None:
    report = compute(incident(), list(reversed(UPDATES)))
    assert report.time_to_first_update_s == 4 * 60
    assert report.duration_s == 95 * 60
    figures = [(i.from_number, i.to_number, i.elapsed_s, i.promised_s, i.late_by_s) for i in report.intervals]
    assert figures == [(1, 2, 26 * 60, 30 * 60, 0.0), (2, 3, 42 * 60, 30 * 60, 12 * 60), (3, 4, 23 * 60, None, 0.0)]
    assert [i.kept for i in report.intervals] == [True, False, None]
    assert (report.promises_kept, report.promises_broken) == (1, 1)
    assert report.longest_silence_s == 42 * 60


def change(component: str, old: str | None, new: str, minutes: float) -> dict[str, Any]:
    return {"component_id": component, "old_status": old, "new_status": new, "created_at": at(minutes)}


def test_clock_starts_when_the_first_component_went_down() -> None:
    changes = [
        change("api", None, "operational", -600),
        change("api", "operational", "degraded_performance", -30),
        change("api", "degraded_performance", "operational", -20),
        change("api", "operational", "partial_outage", -7),
        change("db", "operational", "major_outage", -3),
        change("db", "major_outage", "major_outage", 4),  # restated by the first update itself
    ]
    assert outage_start(changes, at(4)) == at(-7)
    report = compute(incident(), UPDATES, changes)
    assert report.first_down_at == at(-7)
    assert report.time_to_first_update_s == 11 * 60
    assert report.duration_s == 102 * 60


def test_reach_and_markdown() -> None:
    reach = {"webhook": {"sent": 5, "failed": 2, "pending": 0, "total": 7}, "email": {"sent": 3, "total": 3}}
    reasons = {"webhook": {"HTTP 410 from receiver": 1, "HTTP 404 from receiver": 1}}
    report = compute(incident(), UPDATES, reach=reach, failure_reasons=reasons)
    figures = [(r.channel, r.sent, r.failed, r.total) for r in report.reach]
    assert figures == [("email", 3, 0, 3), ("webhook", 5, 2, 7)]
    assert report.reach[1].failure_reasons == (("HTTP 404 from receiver", 1), ("HTTP 410 from receiver", 1))
    text = to_markdown(report)
    assert "Time to first public update: 4 min" in text
    assert "| #2 | #3 | 42 min | 30 min | 12 min |" in text
    assert "| webhook | 5 | 2 | 0 | 7 |" in text
    assert "- HTTP 410 from receiver: 1" in text


def test_duration_format() -> None:
    assert duration(3725) == "1 h 2 min 5 s"
    assert duration(0) == "0 s"
    assert duration(None) == "-"
