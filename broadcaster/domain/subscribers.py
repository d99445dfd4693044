"""Subscribers: who gets email, SMS, webhook and chat notifications, for which components.

A chat subscriber (``CHAT_CHANNELS``: Slack, Microsoft Teams, Discord, Google Chat) is a
webhook URL of that service: the same URL policy as a webhook's applies (https, no
credentials, public addresses only, checked again at every delivery).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster import i18n
from broadcaster.db import new_id, subscriber_components, subscribers, utcnow
from broadcaster.domain.components import require_components
from broadcaster.errors import InputError, NotFound
from broadcaster.schemas import SubscriberIn
from broadcaster.security import new_webhook_secret
from broadcaster.ssrf import PRIVATE, ResolveFailed, TargetRefused, refuse_private_literal, vet_url

Row = dict[str, Any]


def normalize_email(address: str, field: str = "address") -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InputError("invalid email address", {field: str(exc)}) from None


def normalize_phone(number: str, field: str = "address", default_region: str | None = None) -> str:
    """E.164 form of ``number``; a clear field error when it is not a valid phone number."""
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InputError("invalid phone number", {field: f"not a phone number: {exc}"}) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InputError("invalid phone number", {field: "not a valid number (use E.164, e.g. +14155550100)"})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


PRIVATE_TARGET = "must not point at a private or loopback address"
CHAT_CHANNELS = ("slack", "teams", "discord", "google_chat")
URL_CHANNELS = ("webhook", *CHAT_CHANNELS)
"""Channels whose subscribers are URLs someone else chose (SSRF policy; the URL is a secret)."""


def normalize_webhook_url(url: str, allow_private: bool, field: str = "address") -> str:
    """An https URL, not on a private or loopback IP address (http and those only when allowed: SSRF).

    Where a host name resolves is ``check_webhook_target``'s to check: it waits for DNS.
    """
    parts = urlsplit(url)
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes or not parts.hostname:
        raise InputError("invalid webhook URL", {field: "must be an https URL"})
    if parts.username or parts.password:
        raise InputError("invalid webhook URL", {field: "must not carry credentials"})
    if not allow_private and refuse_private_literal(url) is not None:
        raise InputError("invalid webhook URL", {field: PRIVATE_TARGET})
    return url


async def check_webhook_target(url: str, allow_private: bool, field: str = "address") -> None:
    """``InputError`` naming ``field`` unless ``url``'s host resolves, now, to public addresses only (SSRF).

    Fails closed: a host that does not resolve, or not in time, is refused too. Every delivery
    vets the host again where it connects (``broadcaster.ssrf.PinnedTransport``); with
    ``allow_private`` (development) only delivery looks it up.
    """
    if allow_private:
        return
    try:
        await vet_url(url)
    except TargetRefused as exc:
        reason = PRIVATE_TARGET if exc.why == PRIVATE else f"{exc.host} {exc.why}"
        raise InputError("invalid webhook URL", {field: reason}) from None
    except ResolveFailed as exc:
        raise InputError("invalid webhook URL", {field: f"{exc.reason}; try again later"}) from None


def normalize_address(channel: str, address: str, allow_private_webhooks: bool, field: str = "address") -> str:
    if channel == "email":
        return normalize_email(address, field)
    if channel == "sms":
        return normalize_phone(address, field)
    if channel in URL_CHANNELS:
        return normalize_webhook_url(address, allow_private_webhooks, field)
    raise InputError("unknown channel", {"channel": f"must be email, sms or one of {', '.join(URL_CHANNELS)}"})


def subscriber_language(value: object, offered: Sequence[str], field: str = "language") -> str | None:
    """The offered language ``value`` names (``"FR"`` → ``"fr"``, ``"fr-CA"`` → ``"fr"``); ``None`` when
    none is given (the page's default); an ``InputError`` naming ``field`` for any other value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    code = i18n.best_match([value], offered) if isinstance(value, str) else None
    if code is None:
        shown = repr(value.strip()[:35]) if isinstance(value, str) else "this value"
        raise InputError("unknown language", {field: f"{shown} is not offered here (offered: {', '.join(offered)})"})
    return code


async def set_language(conn: AsyncConnection, subscriber_id: str, language: str | None) -> None:
    """The subscriber's language from now on (``None``: the page's default); already checked."""
    await conn.execute(subscribers.update().where(subscribers.c.id == subscriber_id).values(language=language))


async def subscriber_component_ids(conn: AsyncConnection, subscriber_id: str) -> list[str]:
    result = await conn.execute(
        select(subscriber_components.c.component_id).where(subscriber_components.c.subscriber_id == subscriber_id)
    )
    return sorted(str(v) for v in result.scalars())


async def set_components(conn: AsyncConnection, subscriber_id: str, component_ids: Sequence[str]) -> None:
    """Replace the subscriber's component filter (empty: every component)."""
    await require_components(conn, component_ids)
    await conn.execute(delete(subscriber_components).where(subscriber_components.c.subscriber_id == subscriber_id))
    if component_ids:
        await conn.execute(
            subscriber_components.insert(),
            [{"subscriber_id": subscriber_id, "component_id": cid} for cid in dict.fromkeys(component_ids)],
        )


async def get_subscriber(conn: AsyncConnection, subscriber_id: str) -> Row:
    row = (await conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id))).mappings().first()
    if row is None:
        raise NotFound("no such subscriber", {"id": f"unknown subscriber {subscriber_id!r}"})
    result = dict(row)
    result["components"] = await subscriber_component_ids(conn, subscriber_id)
    return result


async def find_subscriber(conn: AsyncConnection, channel: str, address: str, *, drill: bool = False) -> Row | None:
    """The real subscriber for ``address`` (or, with ``drill=True``, the drill recipient): two separate rows."""
    query = select(subscribers).where(
        subscribers.c.channel == channel, subscribers.c.address == address, subscribers.c.drill.is_(drill)
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def upsert_subscriber(
    conn: AsyncConnection,
    data: SubscriberIn,
    *,
    allow_private_webhooks: bool,
    drill: bool = False,
    field: str = "address",
    languages: Sequence[str] | None = None,
) -> tuple[Row, bool]:
    """Create a subscriber, or refresh the existing one for the same address; returns (row, created).

    Re-subscribing never duplicates: an address that unsubscribed comes back unconfirmed
    (it must opt in again) unless an admin marks it confirmed. A real subscriber and a drill
    recipient (``drill=True``) of the same address are two rows: neither ever touches the other.
    A refused address is an ``InputError`` naming ``field``. ``data.language`` must be one of
    ``languages`` (default: every shipped one); when ``data`` leaves it out, an existing
    subscriber keeps theirs.
    """
    language = subscriber_language(data.language, languages or i18n.shipped_languages())
    address = normalize_address(data.channel, data.address, allow_private_webhooks, field=field)
    if data.channel in URL_CHANNELS:
        await check_webhook_target(address, allow_private_webhooks, field=field)
    await require_components(conn, data.components)
    now = utcnow()
    existing = await find_subscriber(conn, data.channel, address, drill=drill)
    if existing is None:
        subscriber_id = new_id()
        await conn.execute(
            subscribers.insert().values(
                id=subscriber_id,
                channel=data.channel,
                address=address,
                confirmed=data.confirmed,
                confirmed_at=now if data.confirmed else None,
                created_at=now,
                drill=drill,
                secret=new_webhook_secret() if data.channel == "webhook" else None,
                meta={},
                language=language,
            )
        )
        created = True
    else:
        subscriber_id = existing["id"]
        values: dict[str, Any] = {}
        if existing["unsubscribed_at"] is not None:
            values.update(unsubscribed_at=None, confirmed=data.confirmed, confirmed_at=now if data.confirmed else None)
        elif data.confirmed and not existing["confirmed"]:
            values.update(confirmed=True, confirmed_at=now)
        if "language" in data.model_fields_set and language != existing.get("language"):
            values["language"] = language
        if values:
            await conn.execute(subscribers.update().where(subscribers.c.id == subscriber_id).values(**values))
        created = False
    await set_components(conn, subscriber_id, data.components)
    return await get_subscriber(conn, subscriber_id), created


async def unsubscribe(conn: AsyncConnection, subscriber_id: str) -> bool:
    """Stop all notifications to the subscriber; True when something changed."""
    result = await conn.execute(
        subscribers.update()
        .where(subscribers.c.id == subscriber_id, subscribers.c.unsubscribed_at.is_(None))
        .values(unsubscribed_at=utcnow())
    )
    return bool(result.rowcount)


async def delete_subscriber(conn: AsyncConnection, subscriber_id: str) -> None:
    result = await conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))
    if not result.rowcount:
        raise NotFound("no such subscriber", {"id": f"unknown subscriber {subscriber_id!r}"})


async def list_subscribers(
    conn: AsyncConnection, *, channel: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[Row], int]:
    query = select(subscribers).where(subscribers.c.drill.is_(False))
    count_query = select(func.count()).select_from(subscribers).where(subscribers.c.drill.is_(False))
    if channel:
        query = query.where(subscribers.c.channel == channel)
        count_query = count_query.where(subscribers.c.channel == channel)
    rows = [
        dict(r)
        for r in (
            await conn.execute(query.order_by(subscribers.c.created_at, subscribers.c.id).limit(limit).offset(offset))
        ).mappings()
    ]
    total = int((await conn.execute(count_query)).scalar() or 0)
    if rows:
        ids = [r["id"] for r in rows]
        links = await conn.execute(select(subscriber_components).where(subscriber_components.c.subscriber_id.in_(ids)))
        by_subscriber: dict[str, list[str]] = {i: [] for i in ids}
        for link in links.mappings():
            by_subscriber[link["subscriber_id"]].append(link["component_id"])
        for row in rows:
            row["components"] = sorted(by_subscriber[row["id"]])
    return rows, total


async def webhook_secrets(conn: AsyncConnection, addresses: Iterable[str]) -> dict[str, str]:
    """{address: signing secret} of the real webhook subscribers at ``addresses``."""
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    result = await conn.execute(
        select(subscribers.c.address, subscribers.c.secret).where(
            subscribers.c.channel == "webhook", subscribers.c.address.in_(wanted), subscribers.c.drill.is_(False)
        )
    )
    return {row.address: row.secret for row in result if row.secret}
