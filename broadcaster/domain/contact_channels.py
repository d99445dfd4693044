"""How to reach us right now: each contact channel (Phone, Chat, Email, Stores) open, busy or closed.

The list is replaced as a whole (``replace_channels``), only ever inside the posting service's
transaction (``broadcaster.domain.contact_changes``). While any channel is not ``open`` the
page, its mirror and the desk show a banner, and every ``Message`` carries ``notice_line`` so
email (and chat) updates say it in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError, field_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.brand_checks import check_url
from broadcaster.db import contact_channels, utcnow
from broadcaster.errors import InputError
from broadcaster.models import ContactState
from broadcaster.schemas import Strict, input_error

MAX_CHANNELS = 10


class ContactChannelIn(Strict):
    name: str = Field(min_length=1, max_length=64, description="e.g. Phone, Chat, Email, Stores")
    state: ContactState
    note: str = Field(default="", max_length=255, description='e.g. "Lines are jammed; use chat"')
    url: str | None = Field(default=None, max_length=2048, description="where to reach it (https, mailto:, tel:)")

    @field_validator("url")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        if value is None or not value:
            return None
        try:
            return check_url(value, "url")
        except InputError as exc:
            raise ValueError(exc.fields["url"]) from None


class ContactChannelsIn(Strict):
    """``PUT /api/v1/page/contact-channels``: the whole list, in page order."""

    channels: list[ContactChannelIn] = Field(max_length=MAX_CHANNELS)
    notify: bool = Field(default=False, description="also post the change as an update (subscribers hear of it)")
    message: str | None = Field(default=None, max_length=2000, description="the update's text when notifying")

    @field_validator("channels", mode="before")
    @classmethod
    def _each(cls, value: Any) -> Any:
        """Each channel checked here, so that a refusal names it: ``channels.1.state``."""
        if not isinstance(value, list):
            return value
        checked = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise InputError("invalid channel", {f"channels.{i}": "must be an object {name, state, note, url}"})
            try:
                checked.append(ContactChannelIn(**item))
            except ValidationError as invalid:  # inside another model's validation: pydantic's own error
                exc = input_error(invalid)
                raise InputError(exc.message, {f"channels.{i}.{k}": v for k, v in exc.fields.items()}) from None
            except InputError as exc:
                raise InputError(exc.message, {f"channels.{i}.{k}": v for k, v in exc.fields.items()}) from None
        return checked


@dataclass(frozen=True, slots=True)
class ContactChannel:
    name: str
    state: str  # ContactState
    note: str = ""
    url: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state == ContactState.OPEN.value


async def load_channels(conn: AsyncConnection) -> list[ContactChannel]:
    """The channels in page order (empty: none listed)."""
    rows = (await conn.execute(select(contact_channels).order_by(contact_channels.c.position))).mappings()
    return [ContactChannel(r["name"], r["state"], r["note"] or "", r["url"]) for r in rows]


def check_unique(channels: list[ContactChannelIn]) -> None:
    seen: set[str] = set()
    for i, channel in enumerate(channels):
        key = channel.name.casefold()
        if key in seen:
            raise InputError("a channel is listed twice", {f"channels.{i}.name": f"{channel.name} is listed twice"})
        seen.add(key)


async def replace_channels(conn: AsyncConnection, channels: list[ContactChannelIn]) -> list[ContactChannel]:
    """Store ``channels`` as the whole list, in the caller's transaction."""
    check_unique(channels)
    now = utcnow()
    await conn.execute(delete(contact_channels))
    if channels:
        await conn.execute(
            contact_channels.insert(),
            [
                {"position": i, "name": c.name, "state": c.state.value, "note": c.note, "url": c.url, "updated_at": now}
                for i, c in enumerate(channels)
            ],
        )
    return [ContactChannel(c.name, c.state.value, c.note, c.url) for c in channels]


def needs_banner(channels: list[ContactChannel]) -> bool:
    """Whether customers must be told: some channel is not open."""
    return any(not c.is_open for c in channels)


def describe(channel: ContactChannel) -> str:
    """``Phone: busy (Lines are jammed; use chat)``."""
    note = f" ({channel.note.rstrip('.')})" if channel.note else ""
    return f"{channel.name}: {channel.state}{note}"


def notice_line(channels: list[ContactChannel]) -> str | None:
    """The one line email and chat updates carry while some channel is not open; None otherwise."""
    if not needs_banner(channels):
        return None
    return "How to reach us now: " + "; ".join(describe(c) for c in channels) + "."


def as_json(channel: ContactChannel) -> dict[str, Any]:
    return {"name": channel.name, "state": channel.state, "note": channel.note, "url": channel.url}
