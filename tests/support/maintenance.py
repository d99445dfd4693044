"""What the maintenance tests share: an audience (a webhook and an email subscriber) and its inbox."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.smtp import RecordingSMTP

EMAIL = "ops-watcher@example.org"
# The numbers (start in 5 s, end in 15 s, restart 10 s after the kill) with
# BROADCASTER_TEST_MAINTENANCE_ACCEPTANCE=1; shorter ones by default, to keep the suite fast.
ACCEPTANCE = os.environ.get("BROADCASTER_TEST_MAINTENANCE_ACCEPTANCE") == "1"


@dataclass
class Told:
    """One message a subscriber received: the update's status and its text."""

    status: str
    text: str


@dataclass
class Audience:
    receiver: WebhookReceiver
    smtp: RecordingSMTP

    def webhook(self) -> list[Told]:
        found = []
        for item in self.receiver.received:
            assert item["verified"], "a webhook whose signature does not verify"
            update = json.loads(item["body"])["data"]["update"]
            found.append(Told(update["status"], update["body"]))
        return found

    def email(self) -> list[Told]:
        found = []
        for message in self.smtp.messages:
            part = message.get_body(preferencelist=("plain",))
            assert part is not None
            subject = str(message["Subject"])
            status = subject.split("]", 1)[0].lstrip("[").lower().replace(" ", "_")
            found.append(Told(status, str(part.get_content())))
        return found

    def both(self) -> dict[str, list[Told]]:
        return {"webhook": self.webhook(), "email": self.email()}

    def counts(self, status: str, text: str = "") -> dict[str, int]:
        """How many messages each subscriber got with ``status`` (and ``text`` in them)."""
        return {
            name: sum(1 for t in told if t.status == status and text in t.text) for name, told in self.both().items()
        }


async def subscribe(client: httpx.AsyncClient, auth: dict[str, str], receiver: WebhookReceiver, base: str) -> None:
    """A confirmed webhook subscriber (its secret given to the receiver) and a confirmed email subscriber."""
    hook = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "webhook", "address": f"{base}/hook", "confirmed": True}
    )
    assert hook.status_code == 201, hook.text
    receiver.secret = hook.json()["secret"]
    mail = await client.post(
        "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": EMAIL, "confirmed": True}
    )
    assert mail.status_code == 201, mail.text


async def component(client: httpx.AsyncClient, auth: dict[str, str], name: str = "API") -> str:
    created = await client.post("/api/v1/components", headers=auth, json={"name": name})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def in_s(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def maintenance_body(component_id: str, start: datetime, end: datetime | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Database upgrade",
        "kind": "maintenance",
        "status": "scheduled",
        "message": "We will upgrade the primary database.",
        "scheduled_for": z(start),
        "scheduled_until": z(end) if end else None,
        "components": {component_id: "under_maintenance"},
    }
    body.update(extra)
    return body


async def until(predicate: Callable[[], Awaitable[bool]], timeout_s: float, interval_s: float = 0.05) -> float:
    """Wait for ``predicate``; the wall-clock time (epoch seconds) it first held."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await predicate():
            return time.time()
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        await asyncio.sleep(interval_s)


async def sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
