"""The local X app's OAuth 1.0a check: oauthlib's ``SignatureOnlyEndpoint`` verifies each signature.

As X does for user-context requests: the consumer key and the access token must be the app's
and the account's, the HMAC-SHA1 signature must match both secrets, the timestamp must be
within five minutes and a nonce is accepted once.
"""

from __future__ import annotations

from typing import Any, Protocol

from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint
from starlette.requests import Request

_FORM = "application/x-www-form-urlencoded"


class OAuth1Keys(Protocol):
    """The app's and the account's OAuth 1.0a credentials, as the provider knows them."""

    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str


class _Validator(RequestValidator):  # type: ignore[misc]
    """What oauthlib asks the server: the secrets of a key, and whether a nonce is new."""

    enforce_ssl = False  # the sandbox listens on loopback http

    def __init__(self, keys: OAuth1Keys) -> None:
        super().__init__()
        self.keys = keys
        self.nonces: set[tuple[str, str, str]] = set()

    @property
    def dummy_client(self) -> str:
        return "dummy-consumer-key"

    @property
    def dummy_access_token(self) -> str:
        return "dummy-access-token"

    def check_client_key(self, client_key: str) -> bool:
        return bool(client_key)  # X's keys are not oauthlib's default 20-30 characters

    def check_nonce(self, nonce: str) -> bool:
        return bool(nonce)

    def validate_timestamp_and_nonce(self, client_key: str, timestamp: str, nonce: str, *_: Any, **__: Any) -> bool:
        key = (client_key, timestamp, nonce)
        if key in self.nonces:
            return False
        self.nonces.add(key)
        return True

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key == self.keys.consumer_key

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return self.keys.consumer_secret if client_key == self.keys.consumer_key else "dummy-secret"

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        return self.keys.access_token_secret if token == self.keys.access_token else "dummy-secret"


class OAuth1Verifier:
    """Verifies a request's ``Authorization: OAuth ...`` header against ``keys``."""

    def __init__(self, keys: OAuth1Keys) -> None:
        self._keys = keys
        self._endpoint = SignatureOnlyEndpoint(_Validator(keys))

    async def verify(self, request: Request) -> bool:
        """Whether the request is signed with the app's and the account's keys."""
        form = request.headers.get("content-type", "").startswith(_FORM)
        body = (await request.body()).decode() if form else None  # only a form body is signed (RFC 5849 3.4.1.3.1)
        valid, signed = self._endpoint.validate_request(str(request.url), request.method, body, dict(request.headers))
        return bool(valid) and signed is not None and signed.resource_owner_key == self._keys.access_token
