"""Sending the opt-in confirmation (email link or SMS code) off the request path.

``POST /subscribe`` stores the subscriber, then enqueues the arq job ``send_confirmation``
(job id ``confirm:<subscriber>``, so a double click sends once); the worker signs the link
or makes the code and sends it through the registry's email or SMS channel (a ``DirectSender``;
each attempt is a ledger row of kind ``confirmation``). Slow or failing providers retry with
backoff a few times and never hold up the sign-up's answer.

Every confirmation (the mail's subject and both parts, the SMS code, the answer to HELP) is
written in the subscriber's language, else the page's default (``broadcaster.i18n.written_in``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from arq.worker import Function, func

from broadcaster import i18n
from broadcaster.config import Settings
from broadcaster.delivery import direct
from broadcaster.delivery.channel import DirectMessage, DirectSender
from broadcaster.domain.page_brand import Brand, load_brand
from broadcaster.domain.signups import component_names, is_active, new_code
from broadcaster.domain.subscribers import get_subscriber
from broadcaster.errors import NotFound, PermanentError, RetryableError
from broadcaster.jobs.side_jobs import retry_or_give_up
from broadcaster.models import DeliveryKind
from broadcaster.render import environment
from broadcaster.runtime import Runtime
from broadcaster.security import LinkSigner

log = logging.getLogger(__name__)

SEND_CONFIRMATION = "send_confirmation"
CONFIRM_MAX_TRIES = 6
CONFIRM_PURPOSE = "confirm"


def job_id(subscriber_id: str) -> str:
    return f"confirm:{subscriber_id}"


def confirm_url(settings: Settings, subscriber_id: str) -> str:
    """The signed double opt-in link for an email subscriber."""
    token = LinkSigner(settings.secret_key.get_secret_value()).sign(CONFIRM_PURPOSE, subscriber_id)
    return f"{settings.public_url}/subscriptions/confirm?token={token}"


def confirmation_mail(
    settings: Settings,
    link: str,
    components: Sequence[str] = (),
    brand: Brand | None = None,
    language: str | None = None,
) -> DirectMessage:
    """The double opt-in mail: the signed ``link`` (``confirm_url``) in both parts, in the page's ``brand``,
    in ``language`` (the subscriber's; ``None``: the page's default)."""
    env = environment(settings.templates_dir)
    brand = brand or Brand()
    logo = brand.image_url("logo")
    page_name = brand.page_name(settings.page_name)
    context = {
        "page_name": page_name,
        "page_url": settings.public_url,
        "confirm_url": link,
        "components": list(components),
        "logo_url": f"{settings.public_url}{logo}" if logo else None,
        "accent_color": brand.accent_color,
    }
    with i18n.using(i18n.written_in(settings, language)) as speaking:
        return DirectMessage(
            subject=i18n.gettext("Confirm your subscription to %(page)s", page=page_name),
            text=env.get_template("email/confirm.txt").render(context) + "\n",
            html=env.get_template("email/confirm.html").render(context) + "\n",
            headers={"Content-Language": speaking},
        )


def sms_code_text(settings: Settings, code: str, language: str | None = None) -> str:
    """The opt-in code's text, in ``language`` (the subscriber's; ``None``: the page's default)."""
    template = environment(settings.templates_dir).get_template("sms/confirm.txt")
    with i18n.using(i18n.written_in(settings, language)):
        return template.render(
            page_name=settings.page_name, code=code, expires_in_minutes=max(1, settings.sms_code_ttl_s // 60)
        ).strip()


def sms_help_text(settings: Settings, language: str | None = None) -> str:
    """The answer to HELP, in ``language`` (the texting subscriber's; ``None``: the page's default)."""
    template = environment(settings.templates_dir).get_template("sms/help.txt")
    with i18n.using(i18n.written_in(settings, language)):
        return template.render(page_name=settings.page_name, page_url=settings.public_url).strip()


async def send_confirmation(rt: Runtime, subscriber_id: str) -> str:
    """Send the subscriber's confirmation now; returns what happened.

    Raises ``DeliveryError`` when the provider refused or failed.
    """
    settings = rt.settings
    async with rt.engine.connect() as conn:
        try:
            subscriber = await get_subscriber(conn, subscriber_id)
        except NotFound:  # deleted meanwhile
            return "skipped: no such subscriber"
        if is_active(subscriber):
            return "skipped: already confirmed"
        names = await component_names(conn, subscriber["components"])
        brand = await load_brand(conn)
    channel = rt.registry.enabled.get(subscriber["channel"])
    if subscriber["channel"] == "email":
        if not isinstance(channel, DirectSender):
            return "skipped: email is not enabled"
        link = confirm_url(settings, subscriber_id)
        message = confirmation_mail(settings, link, names, brand, subscriber.get("language"))
    elif subscriber["channel"] == "sms":
        if not isinstance(channel, DirectSender):
            return "skipped: sms is not enabled"
        async with rt.engine.begin() as conn:
            code = await new_code(conn, subscriber_id, settings.secret_key.get_secret_value(), settings.sms_code_ttl_s)
        message = DirectMessage(subject="", text=sms_code_text(settings, code, subscriber.get("language")))
    else:
        return f"skipped: {subscriber['channel']} needs no confirmation message"
    await direct.send(rt.engine, channel, DeliveryKind.CONFIRMATION, subscriber_id, subscriber["address"], message)
    return "sent"


async def enqueue_confirmation(rt: Runtime, subscriber_id: str) -> bool:
    """Queue the confirmation; False when Redis is out of reach."""
    return await rt.queue.enqueue(SEND_CONFIRMATION, subscriber_id, job_id=job_id(subscriber_id))


async def send_confirmation_job(ctx: dict[str, Any], subscriber_id: str) -> str:
    rt: Runtime = ctx["runtime"]
    try:
        return await send_confirmation(rt, subscriber_id)
    except PermanentError as exc:
        log.warning("confirmation to subscriber %s refused: %s", subscriber_id, exc.reason)
        return f"failed: {exc.reason}"
    except RetryableError as exc:
        return retry_or_give_up(ctx, exc, rt.settings, CONFIRM_MAX_TRIES, f"confirmation to subscriber {subscriber_id}")


def function(settings: Settings) -> Function:
    """The arq function to list in the worker."""
    return func(
        send_confirmation_job,
        name=SEND_CONFIRMATION,
        keep_result=0,
        max_tries=CONFIRM_MAX_TRIES,
        timeout=settings.job_timeout_s,
    )
