"""Public self-service subscriptions: sign-up, double opt-in, SMS codes, opting out and back in.

Admins write subscribers directly (``broadcaster.domain.subscribers``); the public goes through
here, where nothing reaches an address before its owner proved it is theirs:

- email: a signed, expiring link (``LinkSigner`` purpose ``"confirm"``) mailed to it;
- SMS: a 6-digit code texted to it, stored only as a keyed hash, with an expiry and a
  limited number of attempts;
- webhook, and a chat webhook (Slack, Teams, Discord, Google Chat): stored unconfirmed until
  an admin confirms it (``POST /api/v1/subscribers`` with ``confirmed: true``); the public
  cannot make us POST to an arbitrary URL.

A sign-up for an address that is already confirmed changes nothing (its component filter
and language are changed from the preferences page, reached through a link only its owner
received), and the answer does not reveal that the address was known. An unconfirmed or
unsubscribed address signing up again takes the new components and language.

Errors are ``InputError`` in English (the JSON answers); ``Refused`` also carries what the
sign-up pages show a person, in their language.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster import i18n
from broadcaster.db import subscribers, utcnow, verification_codes
from broadcaster.domain.components import components_by_id, display_name
from broadcaster.domain.subscribers import (
    find_subscriber,
    get_subscriber,
    normalize_address,
    upsert_subscriber,
)
from broadcaster.errors import InputError
from broadcaster.i18n import N_
from broadcaster.schemas import SubscriberIn
from broadcaster.security import hash_code, new_numeric_code, tokens_equal

Row = dict[str, Any]


class Refused(InputError):
    """A refused sign-up: ``fields`` in English for machines, ``shown`` (field → reason) for people."""

    def __init__(self, message: str, fields: dict[str, str], shown: dict[str, str]) -> None:
        super().__init__(message, fields)
        self.shown = shown


@dataclass(frozen=True, slots=True)
class SignUp:
    """The outcome of a public sign-up."""

    subscriber: Row
    needs_confirmation: bool  # send the opt-in mail or code now
    created: bool


def is_active(row: Row) -> bool:
    """Confirmed and neither unsubscribed nor suppressed: what the fan-out sends to."""
    return bool(row["confirmed"]) and row["unsubscribed_at"] is None and row["suppressed_reason"] is None


async def sign_up(
    conn: AsyncConnection,
    channel: str,
    address: str,
    components: Sequence[str],
    *,
    allow_private_webhooks: bool,
    language: str | None = None,
    languages: Sequence[str] | None = None,
) -> SignUp:
    """Store an unconfirmed real subscriber for ``address`` (or refresh the unconfirmed one), in
    ``language`` (one of ``languages``; ``None``: the page's default).

    Always the real row (``drill = false``): an address also in the drill audience signs up
    like any other, and its drill row is left as it is.
    """
    normalized = normalize_address(channel, address, allow_private_webhooks, field=_field_of(channel))
    existing = await find_subscriber(conn, channel, normalized, drill=False)
    if existing is not None and is_active(existing):
        return SignUp(await get_subscriber(conn, existing["id"]), needs_confirmation=False, created=False)
    data = SubscriberIn(
        channel=channel, address=normalized, components=list(components), confirmed=False, language=language
    )
    row, created = await upsert_subscriber(
        conn,
        data,
        allow_private_webhooks=allow_private_webhooks,
        drill=False,
        field=_field_of(channel),
        languages=languages,
    )
    return SignUp(row, needs_confirmation=channel in ("email", "sms"), created=created)


def _field_of(channel: str) -> str:
    return "phone" if channel == "sms" else channel  # the sign-up form's field for the channel


# --- abuse limits -------------------------------------------------------------------------------


def confirmation_key(secret_key: str, channel: str, address: str) -> str:
    """The rate-limit key counting confirmations sent to one normalised ``address``.

    A keyed hash, so Redis never holds the address (an unkeyed hash of a phone number is
    reversed by trying them all). Case is folded: ``Ann@example.org`` and ``ann@example.org``
    reach one mailbox at nearly every provider, and must not each get their three mails.
    """
    return f"subscribe:confirm:{channel}:{hash_code(secret_key, f'{channel}:{address.casefold()}')[:32]}"


def check_sms_country(phone: str, countries: Collection[str] | None) -> None:
    """Refuse (422 naming ``phone``) an E.164 number outside ``countries`` (ISO codes; empty or ``None``: all)."""
    if not countries:
        return
    region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
    if region not in countries:
        accepted = ", ".join(sorted(countries))
        raise Refused(
            N_("SMS is not available for this country"),
            {"phone": f"numbers from {region or 'this country'} cannot sign up here (accepted: {accepted})"},
            {
                "phone": i18n.gettext(
                    "Numbers from %(country)s cannot sign up here (accepted: %(accepted)s).",
                    country=country_name(region) if region else "?",
                    accepted=", ".join(country_name(c) for c in sorted(countries)),
                )
            },
        )


def country_name(region: str) -> str:
    """The ISO country ``region`` named in the current language (``"DE"`` in French: ``"Allemagne"``)."""
    try:
        names = Locale.parse(i18n.current_language(), sep="-").territories
    except (ValueError, UnknownLocaleError):
        return region
    return str(names.get(region, region))


async def confirm_subscription(conn: AsyncConnection, subscriber_id: str) -> Row | None:
    """Mark the subscriber confirmed and active again; ``None`` when it no longer exists.

    It acts on exactly the row whose id the link, code or reply was issued for.

    Proof of possession (a followed link, a code, a START text) also lifts a suppression
    left by an old bounce or carrier opt-out: the address evidently works again.
    """
    now = utcnow()
    result = await conn.execute(
        subscribers.update()
        .where(subscribers.c.id == subscriber_id)
        .values(confirmed=True, confirmed_at=now, unsubscribed_at=None, suppressed_reason=None)
    )
    if not result.rowcount:
        return None
    await conn.execute(delete(verification_codes).where(verification_codes.c.subscriber_id == subscriber_id))
    return await get_subscriber(conn, subscriber_id)


async def find_sms_subscriber(conn: AsyncConnection, phone: str) -> Row | None:
    """The real SMS subscriber for an E.164 number, if any (sign-up codes and STOP/START act on it)."""
    return await find_subscriber(conn, "sms", phone, drill=False)


async def component_names(conn: AsyncConnection, component_ids: Sequence[str]) -> list[str]:
    """Display names ("Group - Component") of ``component_ids``, in the given order."""
    found = await components_by_id(conn, component_ids)
    groups = await components_by_id(conn, [r["group_id"] for r in found.values() if r.get("group_id")])
    return [display_name(found[cid], groups) for cid in component_ids if cid in found]


# --- SMS codes ----------------------------------------------------------------------------------


class CodeCheck(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # or never sent
    EXHAUSTED = "exhausted"  # too many wrong attempts


async def new_code(conn: AsyncConnection, subscriber_id: str, secret_key: str, ttl_s: int) -> str:
    """A fresh 6-digit code for the subscriber (replacing any earlier one); only its hash is kept."""
    code = new_numeric_code(6)
    await conn.execute(delete(verification_codes).where(verification_codes.c.subscriber_id == subscriber_id))
    await conn.execute(
        verification_codes.insert().values(
            subscriber_id=subscriber_id,
            code_hash=hash_code(secret_key, code),
            expires_at=utcnow() + timedelta(seconds=ttl_s),
            attempts=0,
        )
    )
    return code


async def check_code(
    conn: AsyncConnection, subscriber_id: str, code: str, secret_key: str, max_attempts: int
) -> CodeCheck:
    """Check ``code``; every try counts, and the code dies after ``max_attempts`` tries."""
    codes = verification_codes.c
    query = select(verification_codes).where(codes.subscriber_id == subscriber_id)
    row = (await conn.execute(query)).mappings().first()
    if row is None or row["expires_at"] <= utcnow():
        return CodeCheck.EXPIRED
    # Counted with a guarded UPDATE so concurrent guesses cannot exceed the limit.
    counted = await conn.execute(
        verification_codes.update()
        .where(codes.subscriber_id == subscriber_id, codes.attempts < max_attempts)
        .values(attempts=codes.attempts + 1)
    )
    if not counted.rowcount:
        return CodeCheck.EXHAUSTED
    if tokens_equal(row["code_hash"], hash_code(secret_key, code.strip())):
        return CodeCheck.OK
    return CodeCheck.WRONG


async def suppress(conn: AsyncConnection, subscriber_id: str, reason: str) -> None:
    """Stop sending to an address the provider reports dead (kept until it proves alive again)."""
    await conn.execute(
        subscribers.update()
        .where(subscribers.c.id == subscriber_id, subscribers.c.suppressed_reason.is_(None))
        .values(suppressed_reason=reason)
    )
