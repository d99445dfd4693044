"""How the X channel signs in: OAuth 1.0a user context, or OAuth 2.0 with a refresh token; not a channel.

OAuth 1.0a credentials never expire; each request is signed (HMAC-SHA1) by oauthlib. OAuth 2.0
user access tokens last two hours: ``OAuth2Auth`` refreshes them at X's token endpoint before
they expire and keeps the rotated refresh token in the credential store every worker shares
(``broadcaster.delivery.credentials``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1
from oauthlib.oauth1 import Client as OAuth1Signer

from broadcaster.delivery.credentials import Credential, CredentialStore, LocalCredentials
from channels._social import error_text
from channels.base import DeliveryError, RetryableError, credentials_error, http_error, map_transport_errors

_OAUTH_ERROR = ("error", "error_description")  # RFC 6749's error answer, as X sends it


@dataclass(frozen=True, slots=True)
class OAuth1User:
    """OAuth 1.0a user context: the app's consumer key and secret, the account's access token and secret."""

    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    access_token_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class OAuth2User:
    """OAuth 2.0 with a refresh token; ``refresh_token`` only seeds an empty ``credentials`` store."""

    client_id: str
    refresh_token: str = field(repr=False)
    client_secret: str | None = field(default=None, repr=False)  # a confidential client's
    credentials: CredentialStore = field(default_factory=LocalCredentials)
    refresh_margin_s: float = 60.0


class OAuth1Auth(httpx.Auth):
    """Signs every request (HMAC-SHA1, oauthlib): the method, the URL and its query.

    A JSON body is not signed: RFC 5849 (3.4.1.3.1) signs only a form-encoded one.
    """

    def __init__(self, user: OAuth1User) -> None:
        self._signer = OAuth1Signer(
            user.consumer_key,
            client_secret=user.consumer_secret,
            resource_owner_key=user.access_token,
            resource_owner_secret=user.access_token_secret,
            signature_method=SIGNATURE_HMAC_SHA1,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        _, headers, _ = self._signer.sign(str(request.url), http_method=request.method)
        request.headers["Authorization"] = headers["Authorization"]
        yield request


class OAuth2Auth(httpx.Auth):
    """X's OAuth 2.0 user tokens: refreshed ``refresh_margin_s`` before they expire, kept in the store.

    X rotates the refresh token on every refresh and refuses the old one, so the stored pair is
    the only one that works: every worker reads it, and renews it only under the store's lock
    (a second worker waits, reads again, and finds it renewed). The stored pair remembers which
    ``BROADCASTER_X_REFRESH_TOKEN`` it grew from: a new one set by the operator starts afresh.
    """

    def __init__(self, user: OAuth2User, client: httpx.AsyncClient) -> None:
        self._user = user
        self._client = client
        self.name = f"x:oauth2:{user.client_id}"
        self._seed = hashlib.sha256(user.refresh_token.encode()).hexdigest()[:16]

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("X's OAuth 2.0 refresh needs an async client")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:  # revoked early, or expired in flight: refresh once and try again
            request.headers["Authorization"] = f"Bearer {await self.access_token(rejected=token)}"
            yield request

    async def access_token(self, rejected: str | None = None) -> str:
        """The stored access token, refreshed first when near its expiry (or when X ``rejected`` it)."""
        stored = await self._user.credentials.load(self.name)
        if not self._fresh(stored, rejected):

            async def renew(current: Credential | None) -> Credential | None:
                return None if self._fresh(current, rejected) else await self._refresh(current)

            stored = await self._user.credentials.rotate(self.name, renew)
        assert stored is not None  # renew stored one, or raised
        return str(stored.value["access_token"])

    def _fresh(self, stored: Credential | None, rejected: str | None) -> bool:
        if stored is None or stored.expires_at is None or stored.value.get("seed") != self._seed:
            return False
        margin = timedelta(seconds=self._user.refresh_margin_s)
        return stored.value.get("access_token") != rejected and datetime.now(UTC) < stored.expires_at - margin

    async def _refresh(self, current: Credential | None) -> Credential:
        ours = current is not None and current.value.get("seed") == self._seed
        refresh_token = str(current.value["refresh_token"]) if current and ours else self._user.refresh_token
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self._user.client_id}
        secret = self._user.client_secret
        basic = httpx.BasicAuth(self._user.client_id, secret) if secret else httpx.Auth()  # a confidential client's
        with map_transport_errors("X", "POST /2/oauth2/token"):
            response = await self._client.post("/2/oauth2/token", data=form, auth=basic)
        if response.is_error:
            raise token_error(response)
        try:
            body = response.json()
            value = {
                "access_token": str(body["access_token"]),
                "refresh_token": str(body.get("refresh_token") or refresh_token),
                "seed": self._seed,
            }
            lifetime_s = float(body.get("expires_in") or 7200)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RetryableError(f"X answered {response.status_code} to a token refresh without a token") from exc
        return Credential(value, datetime.now(UTC) + timedelta(seconds=lifetime_s))


def token_error(response: httpx.Response) -> DeliveryError:
    """X's answer to a refused token refresh (``{"error", "error_description"}``) as a delivery error."""
    detail = error_text(response, lambda body: ": ".join(str(body[k]) for k in _OAUTH_ERROR if k in body))
    reason = f"X refused the token refresh ({response.status_code} {detail})"
    if response.status_code in (400, 401):  # a spent or revoked refresh token, a wrong client id or secret
        return credentials_error(f"{reason}: set a new BROADCASTER_X_REFRESH_TOKEN, or check the client id and secret")
    return http_error(response, reason, reset_header="x-rate-limit-reset")
