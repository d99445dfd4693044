"""Telling people that a draft waits: the arq job ``notify_draft``, queued once per new draft.

Whom: the contacts of the rule's playbook level when it names one (the people that level's plan
says to call), else the commanders and admins, as the reminders reach them (``jobs.reminders.team``).
How: a one-off email and SMS through the enabled channels' direct senders (``broadcaster.delivery.direct``,
ledger rows of kind ``alert``), with the console link to review every channel's preview and send,
and when the rule auto-publishes, the time it will. A failure is logged and counted, never retried
by the job: the draft is on the console's dashboard anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from arq.worker import Function, func
from sqlalchemy import select

from broadcaster.alerts.publication import load
from broadcaster.config import Settings
from broadcaster.crisis import contacts
from broadcaster.db import alert_rules
from broadcaster.delivery import direct
from broadcaster.delivery.channel import DirectMessage, DirectSender
from broadcaster.errors import DeliveryError, NotFound
from broadcaster.jobs.reminders import team
from broadcaster.models import DeliveryKind
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)

JOB = "notify_draft"


async def enqueue(rt: Runtime, draft_id: str) -> bool:
    """Queue the notice of a new draft (job id ``draft-notice:<id>``); False when Redis is out of reach."""
    return await rt.queue.enqueue(JOB, draft_id, job_id=f"draft-notice:{draft_id}")


def notice(draft: Mapping[str, Any], group: Mapping[str, Any], public_url: str) -> DirectMessage:
    """What the people hear: the alert, the draft's title, the link, and the auto-publish time if any."""
    body = draft["body"] or {}
    title = str(body.get("title") or "an update")
    alerts = list((group["alerts"] or {}).values())
    summary = alerts[0]["summary"] if alerts else "an alert"
    link = f"{public_url}/console/drafts/{draft['id']}"
    verb = "close the incident" if draft["kind"] == "resolve" else "open an incident"
    text = f'{group["source"]} alert: {summary}. A draft to {verb} is ready: "{title}". Review and send it: {link}'
    if draft["publish_at"] is not None:
        text += f" Unless someone decides first, it is published at {draft['publish_at']:%H:%M:%S} UTC."
    return DirectMessage(
        subject=f"[Draft] {title}: review and send",
        text=text,
        short=f"Draft from {group['source']}: {title}. Review and send: {link}",
    )


async def _tell_contacts(rt: Runtime, people: Sequence[Mapping[str, Any]], message: DirectMessage) -> dict[str, int]:
    targets = [
        (name, address, f"contact:{person['id']}")
        for person in people
        for name, address in (("email", person.get("email")), ("sms", person.get("phone")))
        if address
    ]
    counts = {"email": 0, "sms": 0, "failed": 0}
    for name, address, recipient in targets:
        channel = rt.registry.enabled.get(name)
        if not isinstance(channel, DirectSender):
            continue
        try:
            await direct.send(rt.engine, channel, DeliveryKind.ALERT, recipient, address, message)
        except DeliveryError as exc:
            counts["failed"] += 1
            log.warning("telling %s of a draft by %s failed: %s", recipient, name, exc.reason)
        else:
            counts[name] += 1
    return counts


async def notify(rt: Runtime, draft_id: str) -> dict[str, int]:
    """Send the notice of ``draft_id``; returns {"email", "sms", "failed"} counts."""
    async with rt.engine.connect() as conn:
        try:
            draft, group = await load(conn, draft_id)
        except NotFound:
            return {"email": 0, "sms": 0, "failed": 0}
        rule = (await conn.execute(select(alert_rules).where(alert_rules.c.id == group["rule_id"]))).mappings().first()
        people: list[dict[str, Any]] = []
        if rule is not None and rule["playbook_id"] and rule["level"]:
            people = await contacts.level_contacts(conn, rule["playbook_id"], rule["level"])
        members = [] if people else await team(conn)
    message = notice(draft, group, rt.settings.public_url)
    if people:
        counts = await _tell_contacts(rt, people, message)
    else:
        counts = await direct.notify_users(rt.engine, rt.registry.enabled, DeliveryKind.ALERT, members, message)
    log.info("told %d people of draft %s: %s", len(people or members), draft_id, counts)
    return counts


async def notify_draft_job(ctx: dict[str, Any], draft_id: str) -> dict[str, int]:
    rt: Runtime = ctx["runtime"]
    return await notify(rt, draft_id)


def function(settings: Settings) -> Function:
    """The arq function to list in the worker."""
    return func(notify_draft_job, name=JOB, keep_result=0, max_tries=1, timeout=settings.job_timeout_s)
