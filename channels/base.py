"""What a channel module imports: the contract, the message and the delivery errors."""

from __future__ import annotations

from broadcaster.channel import (
    BroadcastChannel,
    Channel,
    ChannelContext,
    Outcome,
    Published,
    Recipient,
    Rendition,
    Sent,
    SubscriberChannel,
    Thread,
)
from broadcaster.config import Settings
from broadcaster.errors import ConfigError, DeliveryError, PermanentError, RateLimited, RetryableError
from broadcaster.message import AgentNotes, ApprovedAnswer, ComponentChange, Message, short_text
from broadcaster.models import ChannelKind
from broadcaster.templating import render_template

__all__ = [
    "AgentNotes",
    "ApprovedAnswer",
    "BroadcastChannel",
    "Channel",
    "ChannelContext",
    "ChannelKind",
    "ComponentChange",
    "ConfigError",
    "DeliveryError",
    "Message",
    "Outcome",
    "PermanentError",
    "Published",
    "RateLimited",
    "Recipient",
    "Rendition",
    "RetryableError",
    "Sent",
    "Settings",
    "SubscriberChannel",
    "Thread",
    "render_template",
    "retry_after_seconds",
    "short_text",
]


def retry_after_seconds(value: str | None) -> float | None:
    """Parse an HTTP ``Retry-After`` (seconds or HTTP date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
