"""The error tree, drawn once.

    BroadcasterError
    ├── ConfigError            settings missing or invalid; raised at start-up, never mid-send
    ├── InputError             bad input from a user: carries field -> reason (becomes a 4xx)
    │   └── NotFound           an id that names nothing (404)
    └── DeliveryError          a channel could not deliver; the reason always reaches the ledger
        ├── RetryableError     try again later (timeouts, 5xx, SMTP 4xx)
        │   └── RateLimited    the provider asked us to wait ``retry_after_s``
        └── PermanentError     never retry (invalid address, 4xx from the provider, opted out)

Channels translate their provider's answers into these in one place each, the way
httpx maps httpcore's exceptions, so the fan-out never needs to know a provider.
"""

from __future__ import annotations


class BroadcasterError(Exception):
    """Base of every error broadcaster raises on purpose."""


class ConfigError(BroadcasterError):
    """A setting is missing or invalid."""


class InputError(BroadcasterError):
    """Input that fails validation; ``fields`` maps a field name to the reason."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(InputError):
    """An id that names nothing."""

    status_code = 404
    code = "not_found"


class Conflict(InputError):
    """The request conflicts with what is stored (a duplicate, a finished incident)."""

    status_code = 409
    code = "conflict"


class DeliveryError(BroadcasterError):
    """A channel could not deliver a message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableError(DeliveryError):
    """Delivery failed for now; the fan-out retries with backoff."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class RateLimited(RetryableError):
    """The provider asked us to slow down; honour ``retry_after_s``."""


class PermanentError(DeliveryError):
    """Delivery can never succeed for this recipient; recorded as failed with its reason."""

    def __init__(self, reason: str, *, suppress_recipient: bool = False) -> None:
        super().__init__(reason)
        # True when the address itself is dead (hard bounce, opted out at the carrier):
        # the subscriber is marked so later updates skip it.
        self.suppress_recipient = suppress_recipient
