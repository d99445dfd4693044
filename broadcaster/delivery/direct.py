"""One-off messages to one person, outside any update's fan-out, each recorded in the ledger.

Opt-in confirmations, contact notices and overdue-update reminders (``broadcaster.jobs``) go
through a channel that is a ``DirectSender``::

    channel = rt.registry.enabled.get("email")
    if isinstance(channel, DirectSender):
        await direct.send(rt.engine, channel, DeliveryKind.REMINDER, "user:carol", "carol@example.com", message)

Each attempt writes one ``deliveries`` row with no update (``update_id`` null) and the
message's ``kind``: ``sent`` with the provider's id (so an SMS status callback finds it), or
``failed`` with the reason. A failed attempt is retried by its job (arq), never by the fan-out.
``notify_users`` tells console users (reminders, pre-flight notices) by email and SMS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.db import deliveries, utcnow
from broadcaster.delivery.channel import Channel, DirectMessage, DirectSender, Sent
from broadcaster.errors import DeliveryError
from broadcaster.models import DeliveryKind, DeliveryState

log = logging.getLogger(__name__)

RECIPIENT_MAX = 64  # deliveries.recipient


async def send(
    engine: AsyncEngine, channel: DirectSender, kind: DeliveryKind, recipient: str, to: str, message: DirectMessage
) -> Sent:
    """Send ``message`` to the address ``to`` through ``channel`` and record it; raises what the channel raised.

    ``recipient`` says who ``to`` is: a subscriber id, ``contact:<id>``, ``user:<name>``.
    """
    try:
        sent = await channel.send_direct(to, message)
    except DeliveryError as exc:
        await _record(engine, channel.name, kind, recipient, to, None, exc.reason)
        raise
    await _record(engine, channel.name, kind, recipient, to, sent.provider_id, None)
    return sent


async def notify_users(
    engine: AsyncEngine,
    channels: Mapping[str, Channel],
    kind: DeliveryKind,
    users: Iterable[Mapping[str, Any]],
    message: DirectMessage,
) -> dict[str, int]:
    """``message`` to each user (``username``, ``email``, ``phone``) by email and by SMS, through
    whichever of ``channels`` (by name) is there; a failure is logged and counted, never raised.
    Returns ``{"email": sent, "sms": sent, "failed": failed}``."""
    sent = {"email": 0, "sms": 0, "failed": 0}
    for user in users:
        for name, address in (("email", user.get("email")), ("sms", user.get("phone"))):
            channel = channels.get(name)
            if not address or not isinstance(channel, DirectSender):
                continue
            try:
                await send(engine, channel, kind, f"user:{user['username']}", address, message)
                sent[name] += 1
            except DeliveryError as exc:
                sent["failed"] += 1
                log.warning("%s %s to %s failed: %s", kind.value, name, user["username"], exc.reason)
    return sent


async def _record(
    engine: AsyncEngine,
    channel: str,
    kind: DeliveryKind,
    recipient: str,
    to: str,
    provider_id: str | None,
    error: str | None,
) -> None:
    now = utcnow()
    row = {
        "update_id": None,
        "kind": kind.value,
        "channel": channel,
        "recipient": recipient[:RECIPIENT_MAX],
        "address": to,
        "state": (DeliveryState.FAILED if error else DeliveryState.SENT).value,
        "attempts": 1,
        "provider_id": provider_id,
        "last_error": error,
        "created_at": now,
        "updated_at": now,
        "sent_at": None if error else now,
    }
    try:
        async with engine.begin() as conn:
            await conn.execute(deliveries.insert().values(**row))
    except SQLAlchemyError as exc:
        # The message went (or failed) already: a ledger outage must not make the job send it again.
        log.warning("%s %s to %s not recorded in the ledger: %r", channel, kind.value, recipient, exc)
