"""The preview is the send: ``POST /api/v1/preview`` shows, channel by channel, what then goes out.

One scenario through the public API with every channel enabled, each at its local provider:
an incident opened (API at ``major_outage``), an update, a ``resolved`` update naming no
components, then a maintenance scheduled, started and completed. Before each post the test
asks for the preview of the same body (plus ``incident_id`` for a follow-up); after the post
and the fan-out it reads back, for each channel, the rendition from what its provider
received (``tests.support.all_channels``) and compares it with the preview's, field for
field. One test per channel and step, so a failure names both.

Only what cannot be equal is normalised, and only where it appears: the preview's stand-in
incident and update ids (read from its webhook rendition) in the URLs, anchors, Message-IDs
and webhook fields that carry them; its clock reading (``created_at``, in the three formats
renditions print it); the email's recipient placeholders; the recipient's signed links.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import zip_longest
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from broadcaster.db import deliveries
from broadcaster.delivery.fanout import Fanout
from tests.conftest import run_worker
from tests.support.all_channels import ALL_CHANNELS, EMAIL, Providers, Seen, Stack, all_providers, app_stack

STEPS = ("open", "update", "resolve", "maintenance", "maintenance_in_progress", "maintenance_completed")
ID_END = r"(?![\w-])"


@dataclass
class Step:
    """One post of the scenario: its body, the preview asked before it, what each channel sent."""

    body: dict[str, Any]
    follows: bool  # an update to the scenario's current incident, not a new one
    preview: dict[str, Any] | str = ""  # {channel: rendition}, or the preview's error answer
    sent: dict[str, Seen] = field(default_factory=dict)


def scenario_steps(api: str, now: datetime) -> dict[str, Step]:
    window = now.replace(second=0, microsecond=0) + timedelta(hours=1)
    return {
        "open": Step(
            {
                "title": "Checkout API errors",
                "status": "investigating",
                "message": "We are investigating **elevated error rates** on the checkout API. Payments may fail.",
                "components": {api: "major_outage"},
                "agent": {
                    "talking_points": "Payments may fail; no card is charged twice.",
                    "approved_answers": [
                        {"question": "Was I charged?", "answer": "No: failed payments are never charged."}
                    ],
                    "escalation": "Enterprise customers: the on-call TAM.",
                },
            },
            follows=False,
        ),
        "update": Step(
            {
                "status": "identified",
                "message": "We found the cause: a faulty deploy. Rolling back now.",
                "components": {api: "partial_outage"},
            },
            follows=True,
        ),
        "resolve": Step(
            {"status": "resolved", "message": "Error rates are back to normal. No data was lost."}, follows=True
        ),
        "maintenance": Step(
            {
                "title": "Database upgrade",
                "kind": "maintenance",
                "status": "scheduled",
                "message": "We will upgrade the primary database. Checkout may be slow for a few minutes.",
                "scheduled_for": _z(window),
                "scheduled_until": _z(window + timedelta(hours=1)),
            },
            follows=False,
        ),
        "maintenance_in_progress": Step(
            {"status": "in_progress", "message": "The upgrade has started.", "components": {api: "under_maintenance"}},
            follows=True,
        ),
        "maintenance_completed": Step({"status": "completed", "message": "The upgrade is complete."}, follows=True),
    }


def _z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(database_url: str) -> dict[str, Step]:
    """The whole scenario, played once for every test of this module."""
    async with all_providers() as providers, app_stack(providers.settings(database_url)) as stack:
        response = await stack.client.post("/api/v1/components", headers=stack.auth, json={"name": "API"})
        assert response.status_code == 201, response.text
        subscribers = await stack.subscribe_everyone(providers)
        steps = scenario_steps(response.json()["id"], datetime.now(UTC))
        incident_id = ""
        for step in steps.values():
            incident_id = await play(stack, providers, step, incident_id, subscribers)
        return steps


async def play(
    stack: Stack, providers: Providers, step: Step, incident_id: str, subscribers: dict[str, dict[str, Any]]
) -> str:
    """Preview, post, fan out, read back; returns the incident the step posted to."""
    client, auth = stack.client, stack.auth
    asked = {**step.body, "incident_id": incident_id} if step.follows else step.body
    answer = await client.post("/api/v1/preview", headers=auth, json=asked)
    preview = answer.json() if answer.status_code == 200 else f"preview answered {answer.status_code}: {answer.text}"
    mark = providers.mark()
    path = f"/api/v1/incidents/{incident_id}/updates" if step.follows else "/api/v1/incidents"
    response = await client.post(path, headers=auth, json=step.body)
    assert response.status_code == 201, response.text
    update = response.json() if step.follows else response.json()["update"]
    incident_id = update["incident_id"]
    await run_worker(stack.settings)
    incident_url = f"{stack.settings.public_url}/incidents/{incident_id}"
    step.sent = providers.received_since(mark, stack.settings, incident_url)
    step.sent["desk"] = await published_rendition(stack, update["id"], "desk")
    step.sent["status_page"] = await status_page_rendition(stack, incident_id, update["id"])
    counts = (await client.get(f"/api/v1/updates/{update['id']}/deliveries", headers=auth)).json()
    for channel in ALL_CHANNELS:
        done = counts.get(channel, {})
        if done.get("sent") != done.get("total") or not done.get("total"):
            step.sent[channel] = f"ledger for {channel}: {done or 'no rows'}"
    step.preview = preview if isinstance(preview, str) else normalised(preview, update, subscribers["email"])
    return str(incident_id)


async def published_rendition(stack: Stack, update_id: str, channel: str) -> Seen:
    """The rendition ``deliver_batch`` handed to the channel's ``publish``.

    The desk publishes nothing that shows its rendition: the web desk draws itself from the
    database and the channel emits a bare ``published`` event. So the rendition is read
    from a fresh ``Fanout`` (which renders as the worker's did), after checking in the
    ledger that the worker published this very update (``provider_id`` is its id).
    """
    async with stack.runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(deliveries.c.state, deliveries.c.provider_id).where(
                    deliveries.c.update_id == update_id, deliveries.c.channel == channel
                )
            )
        ).all()
    if [tuple(r) for r in rows] != [("sent", update_id)]:
        return f"{channel} ledger rows {rows}, expected one sent with provider id {update_id}"
    runtime = stack.runtime
    fanout = Fanout(stack.settings, runtime.engine, runtime.registry, runtime.queue)
    return dict(await fanout.rendition(update_id, channel))


async def status_page_rendition(stack: Stack, incident_id: str, update_id: str) -> Seen:
    """The status page's rendition read back from what the public sees.

    ``url``: the incident page has an element with the update's anchor; ``body_html``: that
    update's body on the page; ``title``, ``status`` and ``body_text``: the update in
    ``/api/v2`` (incidents or scheduled maintenances). Pages are cached until the bus's
    event arrives, hence the short wait.
    """
    url = f"{stack.settings.public_url}/incidents/{incident_id}"
    pattern = re.compile(
        rf'<li class="update" id="update-{re.escape(update_id)}">.*?'
        r'<div class="update-body">(.*?)</div>',
        re.S,
    )
    for _ in range(40):
        page = (await stack.client.get(f"/incidents/{incident_id}")).text
        found = pattern.search(page)
        listed = await _v2_update(stack, incident_id, update_id)
        if found and listed:
            incident, update = listed
            return {
                "url": f"{url}#update-{update_id}",
                "title": incident["name"],
                "status": update["status"],
                "body_html": found.group(1),
                "body_text": update["body"],
            }
        await asyncio.sleep(0.05)
    return f"update {update_id} not on {url} and /api/v2 (page found: {bool(found)})"


async def _v2_update(stack: Stack, incident_id: str, update_id: str) -> tuple[Any, Any] | None:
    for path, key in (("incidents.json", "incidents"), ("scheduled-maintenances.json", "scheduled_maintenances")):
        for incident in (await stack.client.get(f"/api/v2/{path}")).json()[key]:
            for update in incident["incident_updates"] if incident["id"] == incident_id else ():
                if update["id"] == update_id:
                    return incident, update
    return None


def normalised(preview: dict[str, Any], update: dict[str, Any], subscriber: dict[str, Any]) -> dict[str, Any]:
    """The preview with its stand-in ids and clock reading replaced by the post's, and the
    email's recipient placeholders filled in for the one email subscriber."""
    hook = preview.get("webhook")
    if not isinstance(hook, dict):
        return preview  # nothing to learn the stand-ins from: compared as is
    stand_in_incident, stand_in_update = hook["data"]["incident"]["id"], hook["data"]["update"]["id"]
    real_incident, real_update = update["incident_id"], update["id"]
    previewed_at, posted_at = _parse_iso(hook["data"]["update"]["created_at"]), _parse_iso(update["created_at"])
    rules = [
        (rf"/incidents/{re.escape(stand_in_incident)}{ID_END}", f"/incidents/{real_incident}"),
        (rf"#incident-{re.escape(stand_in_incident)}{ID_END}", f"#incident-{real_incident}"),
        (rf"#update-{re.escape(stand_in_update)}{ID_END}", f"#update-{real_update}"),
        (rf"<i\.{re.escape(stand_in_incident)}\.", f"<i.{real_incident}."),  # email thread root Message-ID
        (rf"<u\.{re.escape(stand_in_update)}\.", f"<u.{real_update}."),  # email Message-ID of a follow-up
    ]
    for fmt in (_iso_ms, _minute, _rfc2822):
        rules.append((re.escape(fmt(previewed_at)), fmt(posted_at)))

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, str):
            for pattern, replacement in rules:
                value = re.sub(pattern, replacement.replace("\\", "\\\\"), value)
        return value

    fixed = fix(preview)
    data = fixed["webhook"]["data"]
    data["incident"]["id"] = real_incident if data["incident"]["id"] == stand_in_incident else data["incident"]["id"]
    data["update"]["id"] = real_update if data["update"]["id"] == stand_in_update else data["update"]["id"]
    if isinstance(fixed.get("email"), dict):
        fixed["email"] = _fill(fixed["email"], {"address": EMAIL, "subscriber_id": subscriber["id"]})
    return dict(fixed)


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, str):
        for name, filled in values.items():
            value = value.replace(f"{{{{{name}}}}}", filled)
    return value


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso_ms(value: datetime) -> str:  # webhook timestamps (broadcaster.render.iso)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _minute(value: datetime) -> str:  # the templates' |datetime filter
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _rfc2822(value: datetime) -> str:  # the email Date header
    return format_datetime(value.astimezone(UTC))


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_the_preview_is_what_the_channel_sent(scenario: dict[str, Step], channel: str, step: str) -> None:
    played = scenario[step]
    assert isinstance(played.preview, dict), played.preview
    assert channel in played.preview, f"the preview has no {channel} rendition: {sorted(played.preview)}"
    preview, sent = played.preview[channel], played.sent[channel]
    assert preview == sent, "\n".join(differences(preview, sent))


def differences(preview: Any, sent: Any, path: str = "") -> list[str]:
    """Where the two differ, one line each; for text, the first differing line."""
    if isinstance(preview, dict) and isinstance(sent, dict):
        keys = list(preview) + [k for k in sent if k not in preview]
        return [line for k in keys for line in differences(preview.get(k), sent.get(k), f"{path}.{k}")]
    if isinstance(preview, list) and isinstance(sent, list) and len(preview) == len(sent):
        return [
            line
            for i, (a, b) in enumerate(zip(preview, sent, strict=True))
            for line in differences(a, b, f"{path}[{i}]")
        ]
    if preview == sent:
        return []
    if isinstance(preview, str) and isinstance(sent, str) and "\n" in preview + sent:
        pairs = zip_longest(preview.splitlines(), sent.splitlines(), fillvalue="")
        number, (a, b) = next((n, pair) for n, pair in enumerate(pairs, 1) if pair[0] != pair[1])
        return [f"{path or 'rendition'} line {number}: preview {a.strip()[:300]!r} != sent {b.strip()[:300]!r}"]
    return [f"{path or 'rendition'}: preview {str(preview)[:300]!r} != sent {str(sent)[:300]!r}"]
