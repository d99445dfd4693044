"""What a channel module imports: the contract, the message and the delivery errors, plus
the pieces channels share: settings (``ChannelSettings``, whose ``from_core`` applies the one
all-or-none rule, ``configured``), and the common reading of HTTP answers on which each HTTP
channel lays its provider's own rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from broadcaster.config import ChannelSettings, Settings, configured, env_name
from broadcaster.delivery.channel import (
    BroadcastChannel,
    Channel,
    ChannelContext,
    Checkable,
    DirectMessage,
    DirectSender,
    Listening,
    Outcome,
    Published,
    Recipient,
    Rendition,
    Reply,
    Sent,
    SubscriberChannel,
    Thread,
)
from broadcaster.errors import ConfigError, DeliveryError, PermanentError, RateLimited, RetryableError
from broadcaster.message import AgentNotes, ApprovedAnswer, ComponentChange, Message, short_text
from broadcaster.models import ChannelKind, LimitUnit, ReplyKind
from broadcaster.render import render_template

__all__ = [
    "AgentNotes",
    "ApprovedAnswer",
    "BroadcastChannel",
    "Channel",
    "ChannelContext",
    "ChannelKind",
    "ChannelSettings",
    "Checkable",
    "ComponentChange",
    "ConfigError",
    "DeliveryError",
    "DirectMessage",
    "DirectSender",
    "LimitUnit",
    "Listening",
    "Message",
    "Outcome",
    "PermanentError",
    "Published",
    "RateLimited",
    "Recipient",
    "Rendition",
    "Reply",
    "ReplyKind",
    "ReplyTargetGone",
    "ResetHeader",
    "RetryableError",
    "Sent",
    "Settings",
    "SubscriberChannel",
    "Thread",
    "as_utc",
    "configured",
    "credentials_error",
    "env_name",
    "http_error",
    "map_transport_errors",
    "rate_limit_reset_seconds",
    "render_template",
    "request_json",
    "require_http_url",
    "retry_after_seconds",
    "short_text",
    "transport_error",
]


ResetHeader = Literal["x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset"]
"""A provider's own "when the rate limit resets" header, read when ``Retry-After`` is absent."""


def retry_after_seconds(value: str | None) -> float | None:
    """Parse an HTTP ``Retry-After`` (seconds or HTTP date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return _until(parsedate_to_datetime(value))
    except (TypeError, ValueError):
        return None


def _until_iso_time(value: str) -> float | None:
    try:
        return _until(datetime.fromisoformat(value))
    except ValueError:
        return None


def as_utc(when: datetime) -> datetime:
    """``when`` in UTC; a time without a zone is taken as UTC already (as the database stores them)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _until(when: datetime) -> float:
    """Seconds from now until ``when`` (a time without a zone is UTC), never below 0."""
    return max(0.0, (as_utc(when) - datetime.now(UTC)).total_seconds())


def _until_epoch(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    # Epoch seconds; a small number would be the IETF draft's delta seconds.
    return max(0.0, number - time.time()) if number > 1e9 else number


_RESET_STYLES: dict[ResetHeader, Callable[[str], float | None]] = {
    "x-ratelimit-reset": _until_iso_time,  # Mastodon: an ISO 8601 time
    "x-rate-limit-reset": _until_epoch,  # X: epoch seconds
    "ratelimit-reset": _until_epoch,  # Bluesky: epoch seconds
}


def rate_limit_reset_seconds(headers: Mapping[str, str], reset_header: ResetHeader | None = None) -> float | None:
    """Seconds to wait before trying again, or ``None`` when the answer does not say.

    ``Retry-After`` (seconds or an HTTP date) wins; without it, the provider's
    ``reset_header`` is read in its own style. Pass ``httpx.Headers`` (case-insensitive).

    | ``reset_header``     | who      | value                                   |
    |----------------------|----------|-----------------------------------------|
    | None                 | anyone   | only ``Retry-After`` is read            |
    | x-ratelimit-reset    | Mastodon | ISO 8601 time (naive means UTC)         |
    | x-rate-limit-reset   | X        | epoch seconds (<= 1e9: delta seconds)   |
    | ratelimit-reset      | Bluesky  | epoch seconds (<= 1e9: delta seconds)   |

    An unreadable reset value gives ``None``; a time in the past gives 0.
    """
    seconds = retry_after_seconds(headers.get("retry-after"))
    if seconds is not None or reset_header is None:
        return seconds
    reset = headers.get(reset_header)
    return _RESET_STYLES[reset_header](reset) if reset else None


def credentials_error(reason: str) -> PermanentError:
    """A refusal that an operator fixes by renewing a token or password."""
    return PermanentError(f"credentials need attention: {reason}")


def http_error(response: httpx.Response, reason: str, *, reset_header: ResetHeader | None = None) -> DeliveryError:
    """The common reading of an HTTP error answer, carrying ``reason`` to the ledger.

    | status    | error                                                       | ``retry_after_s``            |
    |-----------|-------------------------------------------------------------|------------------------------|
    | 429       | ``RateLimited(reason)``                                     | ``rate_limit_reset_seconds`` |
    | 408, 5xx  | ``RetryableError(reason)``                                  | ``rate_limit_reset_seconds`` |
    | 401, 403  | ``PermanentError("credentials need attention: " + reason)`` |                              |
    | any other | ``PermanentError(reason)``                                  |                              |

    A channel's own translate function checks its provider's special answers first
    (a deleted article, a vanished reply target, an error code) and calls this for the rest.
    """
    status = response.status_code
    if status == 429:
        return RateLimited(reason, rate_limit_reset_seconds(response.headers, reset_header))
    if status >= 500 or status == 408:
        return RetryableError(reason, rate_limit_reset_seconds(response.headers, reset_header))
    if status in (401, 403):
        return credentials_error(reason)
    return PermanentError(reason)


def transport_error(exc: httpx.TransportError, provider: str, action: str | None = None) -> RetryableError:
    """No answer at all (timeout, refused, reset) from ``provider``: worth another try.

    The one reading of httpx's transport failures; ``action`` (``"PUT /path"``) says what
    was being asked. Never pass anything secret in it: the reason reaches the ledger.
    """
    on = f" on {action}" if action else ""
    if isinstance(exc, httpx.TimeoutException):
        return RetryableError(f"{provider} timed out{on} ({type(exc).__name__})")
    return RetryableError(f"{provider} unreachable{on}: {exc!r}")


@contextmanager
def map_transport_errors(provider: str, action: str | None = None) -> Iterator[None]:
    """Raise httpx's transport failures inside the block as ``transport_error(...)``.

    Every HTTP channel sends through this, as httpx wraps httpcore in ``map_httpcore_exceptions``::

        with map_transport_errors("mastodon"):
            response = await client.post("/api/v1/statuses", json=body)
    """
    try:
        yield
    except httpx.TransportError as exc:
        raise transport_error(exc, provider, action) from exc


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    provider: str,
    base_url: str,
    translate: Callable[[httpx.Response, str], DeliveryError],
    **kwargs: Any,
) -> Mapping[str, Any]:
    """One call to a JSON API: the answer's JSON object (``{}`` for any other JSON value).

    No answer, or a 2xx that is not JSON, is a ``RetryableError`` naming ``provider``
    (and ``base_url`` when it could not be reached); any other answer is raised as
    ``translate(response, "METHOD path")``. ``kwargs`` go to ``client.request``.
    """
    action = f"{method} {path}"
    with map_transport_errors(provider, f"{method} {base_url}{path}"):
        response = await client.request(method, path, **kwargs)
    if not response.is_success:
        raise translate(response, action)
    try:
        body = response.json()
    except ValueError as exc:
        raise RetryableError(f"{provider}: unreadable answer to {action}") from exc
    return body if isinstance(body, Mapping) else {}


class ReplyTargetGone(PermanentError):
    """The post a follow-up should reply to is deleted or not visible: start a new thread instead."""


def require_http_url(url: str, what: str) -> None:
    """``ConfigError`` unless ``url`` is an http(s) URL; ``what`` names the setting in the message."""
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"{what} must be an http(s) URL, not {url!r}")
