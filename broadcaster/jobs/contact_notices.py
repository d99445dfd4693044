"""Keeping a crisis team informed: the internal view of each update, by email and SMS.

After an update of an incident that has contacts (``broadcaster.crisis.contacts``), ``after_post``
enqueues the arq job ``notify_contacts(incident_id, update_id)`` (job id
``contacts:<update>``). The job sends every contact that has not had this update yet what
happened, the public text that went out, their role, the console link and, until they
acknowledge, a one-click acknowledgement link (``/ack?token=…``, signed for the single
purpose "ack"). Contacts are reached through the enabled email and SMS channels' one-off
senders (``DirectSender``; each message is a ledger row of kind ``contact_notice``); their
messages carry no unsubscribe footer (they are not subscribers).

Each contact's row remembers the last update number sent to them, so a retried job or a
late job for an older update never sends twice; escalation adds contacts with number 0 and
enqueues the job for the latest update, which therefore reaches only the added ones.
"""

from __future__ import annotations

import logging
from typing import Any

from arq.worker import Function, func

from broadcaster import i18n
from broadcaster.config import Settings
from broadcaster.crisis import contacts
from broadcaster.delivery import direct
from broadcaster.delivery.channel import DirectMessage, DirectSender
from broadcaster.domain.incidents import get_incident_row, get_update_row, load_message
from broadcaster.errors import DeliveryError, PermanentError, RetryableError
from broadcaster.jobs.side_jobs import retry_or_give_up
from broadcaster.message import Message, one_line
from broadcaster.models import DeliveryKind
from broadcaster.render import environment
from broadcaster.runtime import Runtime
from broadcaster.security import LinkSigner

log = logging.getLogger(__name__)

JOB = "notify_contacts"
MAX_TRIES = 8


def job_id(update_id: str, suffix: str = "") -> str:
    return f"contacts:{update_id}:{suffix}" if suffix else f"contacts:{update_id}"


def ack_url(settings: Settings, row_id: str) -> str:
    """The one-click acknowledgement link of one contact on one incident."""
    token = LinkSigner(settings.secret_key.get_secret_value()).sign(contacts.ACK_PURPOSE, row_id)
    return f"{settings.public_url}/ack?token={token}"


def console_url(settings: Settings, incident_id: str) -> str:
    return f"{settings.public_url}/console/playbooks/incidents/{incident_id}"


async def enqueue(rt: Runtime, incident_id: str, update_id: str, suffix: str = "") -> bool:
    """Queue the notification of ``update_id``; False when Redis is out of reach."""
    return await rt.queue.enqueue(JOB, incident_id, update_id, job_id=job_id(update_id, suffix))


async def after_post(rt: Runtime, incident_id: str, update_id: str) -> bool:
    """The post hook: notify the incident's contacts of this update, if it has any."""
    async with rt.engine.connect() as conn:
        if not await contacts.has_contacts(conn, incident_id):
            return False
    return await enqueue(rt, incident_id, update_id)


def render(
    settings: Settings, message: Message, incident: dict[str, Any], contact: dict[str, Any], ack_link: str
) -> dict[str, str]:
    """Subject, text, HTML and SMS text of one contact's internal view of ``message``, in its language
    (the page's default: the crisis team reads the console's)."""
    meta = incident.get("meta") or {}
    context = {
        "message": message,
        "contact": contact,
        "playbook": meta.get("playbook") or "",  # the templates say "Crisis" in the message's language
        "level": contact["level"],
        "level_name": "",
        "console_url": console_url(settings, message.incident_id),
        "ack_url": ack_link,
        "acknowledged": contact.get("acknowledged_at") is not None,
        "notified_before": int(contact.get("notified_number") or 0) > 0,
    }
    env = environment(settings.templates_dir)
    with i18n.using(message.language):
        subject = one_line(env.get_template("contacts/subject.txt").render(**context))
        return {
            "subject": subject,
            "text": env.get_template("contacts/notify.txt").render(subject=subject, **context).strip() + "\n",
            "html": env.get_template("contacts/notify.html").render(subject=subject, **context),
            "sms": one_line(env.get_template("contacts/sms.txt").render(**context)),
        }


async def notify(rt: Runtime, incident_id: str, update_id: str) -> dict[str, int]:
    """Send ``update_id`` to each contact of the incident that has not had it; returns counts.

    Raises ``RetryableError`` when a provider failed for now (contacts already sent stay sent).
    """
    settings = rt.settings
    async with rt.engine.connect() as conn:
        incident = await get_incident_row(conn, incident_id)
        update = await get_update_row(conn, update_id)
        due = await contacts.due_for(conn, incident_id, int(update["number"]))
        message = (
            await load_message(conn, update_id, settings.page_name, settings.public_url, settings.default_language)
            if due
            else None
        )
    email, sms = rt.registry.enabled.get("email"), rt.registry.enabled.get("sms")
    counts = {"email": 0, "sms": 0, "failed": 0, "contacts": 0}
    retry: RetryableError | None = None
    for contact in due:
        assert message is not None
        view = render(settings, message, incident, contact, ack_url(settings, contact["id"]))
        notice = DirectMessage(subject=view["subject"], text=view["text"], html=view["html"], short=view["sms"])
        who = f"contact:{contact['id']}"
        try:
            if contact["email"] and isinstance(email, DirectSender):
                await direct.send(rt.engine, email, DeliveryKind.CONTACT_NOTICE, who, contact["email"], notice)
                counts["email"] += 1
            if contact["phone"] and isinstance(sms, DirectSender):
                await direct.send(rt.engine, sms, DeliveryKind.CONTACT_NOTICE, who, contact["phone"], notice)
                counts["sms"] += 1
        except RetryableError as exc:
            retry = retry or exc
            continue
        except DeliveryError as exc:
            counts["failed"] += 1
            log.warning("notifying contact %s of %s failed: %s", contact["name"], update_id, exc.reason)
        async with rt.engine.begin() as conn:
            await contacts.mark_notified(conn, contact["id"], int(update["number"]))
        counts["contacts"] += 1
    if retry is not None:
        raise retry
    return counts


async def notify_contacts_job(ctx: dict[str, Any], incident_id: str, update_id: str) -> dict[str, int] | str:
    rt: Runtime = ctx["runtime"]
    try:
        return await notify(rt, incident_id, update_id)
    except PermanentError as exc:  # pragma: no cover - notify records these per contact
        return f"failed: {exc.reason}"
    except RetryableError as exc:
        return retry_or_give_up(ctx, exc, rt.settings, MAX_TRIES, f"notifying contacts of {update_id}")


def function(settings: Settings) -> Function:
    """The arq function to list in the worker."""
    return func(notify_contacts_job, name=JOB, keep_result=0, max_tries=MAX_TRIES, timeout=settings.job_timeout_s)
