"""Pure parts of playbooks: a level's incident body, the contacts' internal view, drill marks, ack times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.config import Settings
from broadcaster.crisis import drills, playbooks
from broadcaster.jobs import contact_notices
from broadcaster.jobs.reminders import Reminder
from tests.support.factories import make_message

LEVEL = {
    "level": 2,
    "title": "Service unavailable",
    "status": "investigating",
    "impact": "major",
    "message": "We are on it.",
    "agent": {"escalation": "Call the IC."},
    "channels": ["status_page", "email", "mastodon"],
    "cadence_minutes": 30,
}
SETTINGS = Settings(_env_file=None, public_url="http://status.test", secret_key="k")  # type: ignore[call-arg]


def test_incident_body_uses_the_level_and_keeps_enabled_default_channels() -> None:
    body = playbooks.incident_body(LEVEL, playbooks.OpenIn(level=2), ["status_page", "email", "sms"])
    assert body == {
        "title": "Service unavailable",
        "status": "investigating",
        "message": "We are on it.",
        "components": {},
        "channels": ["status_page", "email"],
        "agent": {"escalation": "Call the IC."},
        "impact": "major",
        "next_update_in_minutes": 30,
    }
    custom = playbooks.incident_body(
        LEVEL, playbooks.OpenIn(level=2, title="API down", channels=["sms"], next_update_in_minutes=10), ["sms"]
    )
    assert (custom["title"], custom["channels"], custom["next_update_in_minutes"]) == ("API down", ["sms"], 10)


@pytest.mark.parametrize("drill", [False, True])
def test_internal_view_is_marked_on_drills_and_has_no_unsubscribe(drill: bool) -> None:
    message = make_message(drill=drill)
    contact = {"name": "Ana", "role": "Incident commander", "level": 2, "acknowledged_at": None, "notified_number": 0}
    view = contact_notices.render(
        SETTINGS, message, {"meta": {"playbook": "Outage"}}, contact, "http://status.test/ack?token=t"
    )
    assert view["subject"].startswith("[DRILL] [Outage L2] ") is drill
    assert view["sms"].startswith("DRILL [Outage L2] ") is drill
    assert ("DRILL: this is an exercise" in view["text"]) is drill
    assert "Your role: Incident commander" in view["text"] and "Ack: http://status.test/ack?token=t" in view["sms"]
    assert "unsubscribe" not in (view["text"] + view["html"] + view["sms"]).lower()
    acked = contact_notices.render(SETTINGS, message, {"meta": {}}, {**contact, "acknowledged_at": 1}, "x")
    assert "Ack:" not in acked["sms"] and "Acknowledge" not in acked["text"]


def test_reminders_of_a_drill_are_marked() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert Reminder("i", "Outage", at, 60, drill=True).subject() == "[DRILL] [Update overdue] Outage"
    assert Reminder("i", "Outage", at, 60).subject() == "[Update overdue] Outage"


def test_acknowledgement_times_from_stored_timestamps() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"name": "Ana", "role": "IC", "level": 1, "notified_at": t0, "acknowledged_at": t0 + timedelta(seconds=75)},
        {"name": "Ben", "role": "Eng", "level": 2, "notified_at": t0, "acknowledged_at": None},
    ]
    acks = drills.acknowledgements(rows)
    assert [a.after_s for a in acks] == [75.0, None]
