"""Maintenance that runs itself (issue 20): start, end, reminder, reschedule, quiet window, recurrence.

Each test has a real webhook subscriber (the sandbox receiver, signatures checked) and a real
email subscriber (aiosmtpd). The first runs a real worker with its crons in this event loop
and reads the public JSON as a client would; the others call the cron's function
(``jobs.maintenance.run_due``) themselves, twice at once where a second worker could race,
and deliver with a burst worker. Windows are seconds long.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import icalendar
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import deliveries
from broadcaster.domain.users import create_user
from broadcaster.jobs.maintenance import run_due
from broadcaster.runtime import Runtime
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings, run_worker, running_worker
from tests.support.maintenance import (
    ACCEPTANCE,
    Audience,
    component,
    in_s,
    maintenance_body,
    sleep_until,
    subscribe,
    until,
    z,
)
from tests.support.timing import bound
from tests.support.worker_process import settings_env

START_IN_S, END_IN_S = (5.0, 15.0) if ACCEPTANCE else (2.0, 4.5)
CRON_PERIOD_S = 1.0  # maintenance_interval_s's default
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
def settings(database_url: str, clean_database: None, smtp: RecordingSMTP) -> Settings:
    return make_settings(database_url, **smtp.settings())


@pytest.fixture
async def audience(client: httpx.AsyncClient, auth: dict[str, str], smtp: RecordingSMTP) -> AsyncIterator[Audience]:
    receiver = WebhookReceiver()
    async with serve_app(receiver.app()) as base:
        await subscribe(client, auth, receiver, base)
        yield Audience(receiver, smtp)


async def v2(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v2/{path}")
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()
    return data


async def status_of(client: httpx.AsyncClient, component_id: str) -> str:
    summary = await v2(client, "summary.json")
    return str(next(c["status"] for c in summary["components"] if c["id"] == component_id))


async def schedule(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    created = await client.post("/api/v1/incidents", headers=auth, json=body)
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()
    return data


async def cron_twice(runtime: Runtime) -> int:
    """The cron's run, by two workers at the same moment; the steps they posted, together."""
    first, second = await asyncio.gather(run_due(runtime), run_due(runtime))
    return len(first) + len(second)


async def catch_up(runtime: Runtime, settings: Settings) -> int:
    """Cron runs and deliveries, as a running worker makes them, until a run posts nothing; the steps posted."""
    taken = 0
    for _ in range(6):
        await run_worker(settings)  # a step waits for the update before it to go out
        posted = await cron_twice(runtime)
        if not posted:
            break
        taken += posted
    await run_worker(settings)
    return taken


async def test_window_starts_and_ends_by_itself(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, audience: Audience
) -> None:
    """Acceptance 1: in progress with C under maintenance at the start, completed with C back at the end."""
    api = await component(client, auth)
    start, end = in_s(START_IN_S), in_s(END_IN_S)
    async with running_worker(settings):
        maintenance = await schedule(client, auth, maintenance_body(api, start, end))
        assert await status_of(client, api) == "operational"  # scheduling changes nothing yet

        async def active() -> bool:
            listed = (await v2(client, "scheduled-maintenances/active.json"))["scheduled_maintenances"]
            return any(m["id"] == maintenance["id"] and m["status"] == "in_progress" for m in listed)

        started = await until(active, START_IN_S + 10)
        print(f"in progress on active.json {started - start.timestamp():+.2f} s from scheduled_for")
        assert -0.1 <= started - start.timestamp() <= bound(CRON_PERIOD_S + 2.0), started - start.timestamp()
        assert await status_of(client, api) == "under_maintenance"

        async def completed() -> bool:
            listed = (await v2(client, "scheduled-maintenances.json"))["scheduled_maintenances"]
            return any(m["id"] == maintenance["id"] and m["status"] == "completed" for m in listed)

        ended = await until(completed, END_IN_S + 10)
        print(f"completed on scheduled-maintenances.json {ended - end.timestamp():+.2f} s from scheduled_until")
        assert -0.1 <= ended - end.timestamp() <= bound(CRON_PERIOD_S + 2.0), ended - end.timestamp()
        assert await status_of(client, api) == "operational"
        assert not (await v2(client, "scheduled-maintenances/active.json"))["scheduled_maintenances"]

        async def everyone_told() -> bool:
            return all(n == 1 for n in audience.counts("completed").values())

        await until(everyone_told, 10)
    print("told:", {name: [t.status for t in told] for name, told in audience.both().items()})
    assert audience.counts("scheduled") == {"webhook": 1, "email": 1}
    assert audience.counts("in_progress", "in progress") == {"webhook": 1, "email": 1}
    assert audience.counts("completed", "complete") == {"webhook": 1, "email": 1}


async def test_reminder_before_the_start_exactly_once(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, runtime: Runtime, audience: Audience
) -> None:
    """Acceptance 3: a 3 s lead reminds each subscriber once, before the start; the page does not show it."""
    api = await component(client, auth)
    start = in_s(6)  # room for the announcement and the reminder on a loaded machine
    body = maintenance_body(api, start, start + timedelta(seconds=1), remind_before_minutes=0.05)
    maintenance = await schedule(client, auth, body)
    await run_worker(settings)  # the announcement goes out first
    posted = 0
    while datetime.now(UTC) < start - timedelta(seconds=0.3):
        steps = await cron_twice(runtime)
        if steps:
            await run_worker(settings)  # deliver it now, as a running worker would
        posted += steps
        await asyncio.sleep(0.1)
    assert posted == 1  # the reminder, once, though two "workers" looked every 0.1 s
    assert audience.counts("scheduled", "Reminder: this maintenance starts at") == {"webhook": 1, "email": 1}
    detail = (await client.get(f"/api/v1/incidents/{maintenance['id']}", headers=auth)).json()
    reminder = next(u for u in detail["updates"] if u["body"].startswith("Reminder"))
    assert {"webhook", "email"} <= set(reminder["channels"]) and "status_page" not in reminder["channels"]
    async with runtime.engine.connect() as conn:
        sent = (await conn.execute(select(deliveries.c.sent_at).where(deliveries.c.update_id == reminder["id"]))).all()
    assert len(sent) == 2 and all(row.sent_at < start for row in sent)
    listed = (await v2(client, "scheduled-maintenances/upcoming.json"))["scheduled_maintenances"]
    assert [len(m["incident_updates"]) for m in listed] == [1]
    await sleep_until(start + timedelta(seconds=0.1))
    await cron_twice(runtime)
    await run_worker(settings)
    assert audience.counts("scheduled", "Reminder") == {"webhook": 1, "email": 1}


async def test_rescheduling_tells_once_and_bumps_the_calendar(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, audience: Audience
) -> None:
    """Acceptance 4: one "rescheduled" update; maintenance.ics keeps the UID, raises SEQUENCE, moves DTSTART."""
    api = await component(client, auth)
    start = in_s(3600).replace(microsecond=0)
    maintenance = await schedule(client, auth, maintenance_body(api, start, start + timedelta(hours=1)))

    async def event() -> Any:
        answer = await client.get("/maintenance.ics")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar")
        (found,) = icalendar.Calendar.from_ical(answer.content).walk("VEVENT")
        return found

    before = await event()
    assert before.decoded("dtstart") == start and before.decoded("dtstart").utcoffset() == timedelta(0)
    assert "API" in str(before["description"])
    later = start + timedelta(days=1)
    patch = {"scheduled_for": z(later), "scheduled_until": z(later + timedelta(hours=2))}
    edited = await client.patch(f"/api/v1/incidents/{maintenance['id']}", headers=auth, json=patch)
    assert edited.status_code == 200, edited.text
    assert "rescheduled to" in edited.json()["update"]["body"] and edited.json()["sequence"] == 1
    again = await client.patch(f"/api/v1/incidents/{maintenance['id']}", headers=auth, json=patch)
    assert again.json()["update"] is None and again.json()["sequence"] == 1  # the same edit twice: one notice
    await run_worker(settings)
    assert audience.counts("scheduled", "rescheduled to") == {"webhook": 1, "email": 1}
    after = await event()
    assert str(after["uid"]) == str(before["uid"]) and int(after["sequence"]) > int(before["sequence"])
    assert after.decoded("dtstart") == later and after.decoded("dtend") == later + timedelta(hours=2)
    assert 'href="/maintenance.ics"' in (await client.get("/")).text


async def test_edits_are_validated_naming_the_field(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    api = await component(client, auth)
    start = in_s(3600)
    maintenance = await schedule(client, auth, maintenance_body(api, start, start + timedelta(hours=1)))
    path = f"/api/v1/incidents/{maintenance['id']}"
    cases = {
        "rrule": {"rrule": "FREQ=SOMETIMES"},
        "scheduled_until": {"scheduled_until": z(start - timedelta(minutes=1))},
        "scheduled_for": {"scheduled_for": "tomorrow"},
        f"components.{'x' * 12}": {"components": {"x" * 12: "under_maintenance"}},
        "remind_before_minutes": {"remind_before_minutes": -1},
        "auto_transition": {"auto_transition": "sometimes"},
    }
    for field, body in cases.items():
        answer = await client.patch(path, headers=auth, json=body)
        assert answer.status_code == 422 and field in answer.json()["error"]["fields"], (field, answer.text)
    quiet = await client.patch(path, headers=auth, json={"auto_transition": False, "remind_before_minutes": 5})
    assert quiet.status_code == 200 and quiet.json()["update"] is None and quiet.json()["auto_transition"] is False
    assert (await client.patch("/api/v1/incidents/nosuchthing1", headers=auth, json={})).status_code == 404
    incident = await schedule(client, auth, {"title": "Outage", "message": "Looking.", "status": "investigating"})
    answer = await client.patch(f"/api/v1/incidents/{incident['id']}", headers=auth, json={"rrule": "FREQ=DAILY"})
    assert answer.status_code == 422 and "incident_id" in answer.json()["error"]["fields"]
    refused = await client.post(
        "/api/v1/incidents", headers=auth, json={**maintenance_body(api, start, None), "rrule": "X"}
    )
    assert refused.status_code == 422 and "rrule" in refused.json()["error"]["fields"]
    on_incident = {"title": "Outage", "message": "Looking.", "rrule": "FREQ=DAILY"}
    answer = await client.post("/api/v1/incidents", headers=auth, json=on_incident)
    assert answer.status_code == 422 and "rrule" in answer.json()["error"]["fields"]


async def test_component_changes_in_the_window_are_quiet(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, runtime: Runtime, audience: Audience
) -> None:
    """Acceptance 5: a component-only change on C in the window tells no one; the same change after it does."""
    api = await component(client, auth)
    end = in_s(3)
    await schedule(client, auth, maintenance_body(api, in_s(-1), end))
    await run_worker(settings)  # the announcement goes out
    assert await cron_twice(runtime) == 1  # started at once: its start had passed
    await run_worker(settings)
    assert await status_of(client, api) == "under_maintenance"
    told = len(audience.webhook()), len(audience.email())
    change = {"status": "major_outage", "notify": True, "message": "The API is down."}
    during = await client.patch(f"/api/v1/components/{api}", headers=auth, json=change)
    assert during.status_code == 200 and "incident_id" not in during.json()
    await run_worker(settings)
    assert (len(audience.webhook()), len(audience.email())) == told
    await sleep_until(end + timedelta(seconds=0.05))
    assert await catch_up(runtime, settings) == 1
    assert await status_of(client, api) == "major_outage"  # changed by hand meanwhile: left as it is
    told = len(audience.webhook()), len(audience.email())
    after = await client.patch(f"/api/v1/components/{api}", headers=auth, json={**change, "status": "partial_outage"})
    assert "incident_id" in after.json()
    await run_worker(settings)
    assert (len(audience.webhook()), len(audience.email())) == (told[0] + 1, told[1] + 1)


async def test_weekly_rule_schedules_the_next_window(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, runtime: Runtime, audience: Audience
) -> None:
    """Acceptance 6: after the first window completes, upcoming.json (and the calendar) show it a week later."""
    api = await component(client, auth)
    start = in_s(0.5)
    end = start + timedelta(seconds=0.5)
    first = await schedule(client, auth, maintenance_body(api, start, end, rrule="RRULE:FREQ=WEEKLY"))
    await sleep_until(end + timedelta(seconds=0.05))
    assert await catch_up(runtime, settings) == 3  # start, complete, the next occurrence
    (upcoming,) = (await v2(client, "scheduled-maintenances/upcoming.json"))["scheduled_maintenances"]
    assert upcoming["id"] != first["id"] and upcoming["name"] == first["name"]
    scheduled_for = datetime.fromisoformat(upcoming["scheduled_for"].replace("Z", "+00:00"))
    assert scheduled_for == (start + timedelta(days=7)).replace(microsecond=0)  # rules count whole seconds
    assert [c["id"] for c in upcoming["components"]] == [api]
    detail = (await client.get(f"/api/v1/incidents/{upcoming['id']}", headers=auth)).json()
    assert detail["rrule"] == "FREQ=WEEKLY" and detail["auto_transition"] is True
    (vevent,) = icalendar.Calendar.from_ical((await client.get("/maintenance.ics")).content).walk("VEVENT")
    assert str(vevent["uid"]).startswith(upcoming["id"])
    assert await cron_twice(runtime) == 0
    assert audience.counts("scheduled") == {"webhook": 1, "email": 1}  # the series was announced once
    overlapping = maintenance_body(api, start, start + timedelta(days=2), rrule="FREQ=DAILY")
    answer = await client.post("/api/v1/incidents", headers=auth, json=overlapping)
    assert answer.status_code == 422 and "rrule" in answer.json()["error"]["fields"]


async def test_a_window_long_past_is_started_and_completed(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, runtime: Runtime, audience: Audience
) -> None:
    """The window of the year 2000: started late, then completed, on the page and in the history; its
    subscribers are not told of a window that ended more than a day ago; manual ones wait."""
    api = await component(client, auth)
    old = datetime(2000, 1, 1, 2, tzinfo=UTC)
    ancient = await schedule(client, auth, maintenance_body(api, old, old + timedelta(hours=1)))
    manual = await schedule(client, auth, maintenance_body(api, old, old + timedelta(hours=1), auto_transition=False))
    assert await cron_twice(runtime) == 0  # a step waits for the update before it to go out: the announcement
    assert await catch_up(runtime, settings) == 2  # the start, then (once it went out) the completion
    detail = (await client.get(f"/api/v1/incidents/{ancient['id']}", headers=auth)).json()
    assert [u["status"] for u in detail["updates"]] == ["completed", "in_progress", "scheduled"]
    assert "Started at" in detail["updates"][1]["body"] and "2000-01-01 02:00 UTC" in detail["updates"][1]["body"]
    assert (await client.get(f"/api/v1/incidents/{manual['id']}", headers=auth)).json()["status"] == "scheduled"
    assert await status_of(client, api) == "operational"
    for told in audience.both().values():
        assert [t.status for t in told] == ["scheduled", "scheduled"], "the two announcements, and no stale steps"


async def test_cli_schedules_a_maintenance(client: httpx.AsyncClient, auth: dict[str, str], settings: Settings) -> None:
    api = await component(client, auth)
    start = in_s(7200)
    cli = [sys.executable, "-m", "broadcaster.cli", "maintenance", "schedule", "--title", "Switch swap"]
    times = ["--from", z(start), "--until", z(start + timedelta(hours=1)), "--component", api]
    done = await asyncio.create_subprocess_exec(
        *cli, *times, "--rrule", "FREQ=MONTHLY", env=settings_env(settings), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await done.communicate()
    assert done.returncode == 0, out
    incident_id = out.decode().split()[2]
    detail = (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth)).json()
    assert (detail["kind"], detail["status"], detail["rrule"], detail["components"]) == (
        "maintenance",
        "scheduled",
        "FREQ=MONTHLY",
        [api],
    )


async def test_console_form_schedules_with_the_new_fields(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    api = await component(client, auth)
    async with runtime.engine.begin() as conn:
        await create_user(conn, "ic", "correct horse battery", "commander")
    login = await client.get("/login")
    csrf = CSRF.search(login.text)
    assert csrf
    form = {"username": "ic", "password": "correct horse battery", "csrf_token": csrf.group(1), "next": "/console"}
    assert (await client.post("/login", data=form)).status_code == 303
    page = await client.get("/console/compose?kind=maintenance")
    assert page.status_code == 200 and 'name="rrule"' in page.text and 'name="auto_transition"' in page.text
    token = CSRF.search(page.text)
    assert token
    data = {
        "csrf_token": token.group(1),
        "kind": "maintenance",
        "title": "Switch swap",
        "status": "scheduled",
        "message": "Swapping the core switch.",
        "scheduled_for": "2030-01-05T02:00",
        "scheduled_until": "2030-01-05T03:00",
        f"component.{api}": "under_maintenance",
        "auto_transition_shown": "1",  # the box left unticked: manual
        "remind_before_minutes": "15",
        "rrule": "FREQ=WEEKLY",
        "auto_start_message": "Swapping now.",
        "channels_shown": "1",
        "channels": ["status_page"],
    }
    headers = {"X-CSRF-Token": token.group(1)}
    previewed = await client.post("/console/preview", data=data, headers=headers)
    assert previewed.status_code == 200, previewed.text
    sent = await client.post("/console/send", data={**data, "preview_token": previewed.json()["token"]})
    assert sent.status_code == 303, sent.text
    (listed,) = (await client.get("/api/v1/incidents", headers=auth)).json()
    assert (listed["auto_transition"], listed["remind_before_minutes"], listed["rrule"]) == (False, 15, "FREQ=WEEKLY")
    assert listed["auto_start_message"] == "Swapping now." and listed["components"] == [api]
    bad = await client.post("/console/preview", data={**data, "rrule": "FREQ=NEVER"}, headers=headers)
    assert bad.status_code == 422 and "rrule" in bad.text
