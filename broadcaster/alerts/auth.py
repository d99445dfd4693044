"""Who may send alerts: PagerDuty signs its webhooks; the others bring an API token or their source's secret.

- PagerDuty v3: ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>`` with the subscription's
  signing secret (``BROADCASTER_PAGERDUTY_WEBHOOK_SECRET``); during a secret rotation it sends several
  comma-separated signatures, and one must match.
- The others: ``Authorization: Bearer <API token>`` (commander role or above), or for senders that cannot
  set a header, ``?token=<the source's secret>``. That secret is derived from ``BROADCASTER_SECRET_KEY``
  and the source's name (HMAC-SHA256), so each source has its own, nothing is stored, and changing the
  secret key changes them all. The console's alert rules page shows each source's URL with it.
"""

from __future__ import annotations

import hashlib
import hmac

from broadcaster.models import AlertSource

SIGNATURE_HEADER = "X-PagerDuty-Signature"
SOURCE_TOKEN_CHARS = 40


def source_token(secret_key: str, source: AlertSource) -> str:
    """The per-source secret a sender puts in the URL query (``?token=``)."""
    digest = hmac.new(secret_key.encode(), f"broadcaster.alerts.{source.value}".encode(), hashlib.sha256)
    return digest.hexdigest()[:SOURCE_TOKEN_CHARS]


def source_token_ok(secret_key: str, source: AlertSource, given: str) -> bool:
    return hmac.compare_digest(source_token(secret_key, source).encode(), given.strip().encode())


def pagerduty_signature(secret: str, body: bytes) -> str:
    """The ``v1=`` signature PagerDuty computes over the raw body."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pagerduty_signed(secret: str, body: bytes, header: str | None) -> bool:
    """Whether one of the header's signatures is the body's (constant-time compare)."""
    expected = pagerduty_signature(secret, body).encode()
    given = [part.strip().encode() for part in (header or "").split(",") if part.strip()]
    return any(hmac.compare_digest(expected, signature) for signature in given)
