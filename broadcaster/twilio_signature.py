"""``X-Twilio-Signature``: how Twilio signs the webhooks it sends, and how to check one.

https://www.twilio.com/docs/usage/webhooks/webhooks-security

The signature is HMAC-SHA1, keyed with the account's auth token, over the full URL Twilio
requested (scheme, host, path and query string) followed, for a form POST, by every POST
parameter name and value concatenated, sorted by name; the digest is base64 encoded::

    >>> signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
    ...           {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
    ...            "From": "+14158675309", "To": "+18005551212"})
    'RSOYDt4T1cUTdK1PDd93/VVr8B8='
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping


def _pairs(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(k), str(v)) for k, v in items]


def signature(auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a POST of ``params`` to ``url``.

    A name given several values contributes each distinct value once, values sorted, as
    Twilio's own helper libraries do.
    """
    payload = url + "".join(name + value for name, value in sorted(set(_pairs(params))))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def is_valid(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], sent: str | None
) -> bool:
    """True when ``sent`` is the signature of this request; constant-time."""
    if not sent:
        return False
    return hmac.compare_digest(signature(auth_token, url, params).encode(), sent.strip().encode())
