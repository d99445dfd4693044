"""Bluesky: one ``app.bsky.feed.post`` record per update, later updates threaded as replies.

Auth is an app password exchanged for a session (``createSession``), which Bluesky limits
per account (30 in 5 minutes, 300 a day). So the account has one session, shared by every
worker through the credential store (``broadcaster.delivery.credentials``, as
``bluesky:<handle>``) and kept across restarts: renewed with ``refreshSession`` when its
access JWT is near its ``exp`` or is refused (``ExpiredToken``), and created again only when
there is none or the refresh JWT is refused. A 429 to ``createSession`` is stored too, so that
no worker signs in again before the limit resets.

A post is limited to 300 graphemes (and 3000 UTF-8 bytes); links are not counted
specially but are only clickable through a facet, whose offsets are UTF-8 *byte* offsets.

A PDS accepts a reply to a deleted post without complaint, so before replying the channel
asks for the parent record; when it is gone the update starts a new thread.

Thread state: ``{"root": {"uri", "cid"}, "last": {"uri", "cid"}}`` (strong refs).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self

import grapheme
import httpx
from pydantic import SecretStr

from broadcaster.delivery.credentials import Credential, CredentialStore, LocalCredentials
from broadcaster.render import iso
from channels._replies import bluesky_replies
from channels._social import render_post, reply_or_start
from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    DeliveryError,
    LimitUnit,
    Message,
    PermanentError,
    Published,
    RateLimited,
    Rendition,
    Reply,
    ReplyTargetGone,
    RetryableError,
    Settings,
    Thread,
    credentials_error,
    http_error,
    map_transport_errors,
    rate_limit_reset_seconds,
    require_http_url,
)

LIMIT = 300
MAX_BYTES = 3000
POST = "app.bsky.feed.post"
LINK_FEATURE = "app.bsky.richtext.facet#link"
_CREDENTIAL_ERRORS = frozenset(
    {"AuthenticationRequired", "InvalidToken", "ExpiredToken", "AccountTakedown", "AccountDeactivated"}
)
_SESSION_REFUSED = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired"})
REFRESH_MARGIN_S = 60.0  # renew the session this long before its access JWT expires
SIGN_IN_BACKOFF_S = 60.0  # wait after a 429 to createSession that names no reset time

StrongRef = dict[str, str]


def measure(text: str) -> int:
    """The length Bluesky checks against 300: grapheme clusters."""
    return int(grapheme.length(text))


def _shortening_measure(text: str) -> int:
    # Also keeps the post under the lexicon's 3000-byte cap (300 graphemes of 10 bytes).
    return max(measure(text), -(-len(text.encode()) // (MAX_BYTES // LIMIT)))


def link_facets(text: str, url: str) -> list[dict[str, Any]]:
    """A link facet over the last occurrence of ``url`` in ``text``, in UTF-8 byte offsets."""
    start = text.rfind(url)
    if start < 0:
        return []
    byte_start = len(text[:start].encode())
    return [
        {
            "index": {"byteStart": byte_start, "byteEnd": byte_start + len(url.encode())},
            "features": [{"$type": LINK_FEATURE, "uri": url}],
        }
    ]


@dataclass(frozen=True, slots=True)
class _Session:
    access_jwt: str
    refresh_jwt: str
    did: str

    @classmethod
    def of(cls, stored: Credential | None, handle: str) -> _Session:
        """The session in ``stored``; ``RateLimited`` when it records createSession's 429 instead."""
        value = stored.value if stored else {}
        if not value.get("access_jwt"):
            raise _sign_in_refused(value, handle)
        return cls(str(value["access_jwt"]), str(value["refresh_jwt"]), str(value["did"]))


class BlueskySettings(ChannelSettings):
    """``BROADCASTER_BLUESKY_HANDLE`` and ``_APP_PASSWORD`` (both, or neither), ``_BASE_URL`` (the PDS)."""

    title: ClassVar[str] = "Bluesky"
    required: ClassVar[tuple[str, ...]] = ("bluesky_handle", "bluesky_app_password")
    example: ClassVar[Mapping[str, Any]] = {
        "bluesky_base_url": "https://pds.example.test",
        "bluesky_handle": "status.example.test",
        "bluesky_app_password": "app-password",
    }

    bluesky_base_url: str = "https://bsky.social"
    bluesky_handle: str | None = None
    bluesky_app_password: SecretStr | None = None


class BlueskyChannel:
    """Posts each update to Bluesky; follow-ups reply to the previous post, rooted at the first."""

    name: ClassVar[str] = "bluesky"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = False  # public: a drill never goes here
    title: ClassVar[str] = "Bluesky"
    limit: ClassVar[int | None] = LIMIT  # and 3000 UTF-8 bytes
    limit_unit: ClassVar[LimitUnit | None] = LimitUnit.GRAPHEMES
    settings_class: ClassVar[type[ChannelSettings]] = BlueskySettings

    def __init__(
        self,
        handle: str,
        app_password: str,
        *,
        base_url: str = "https://bsky.social",
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        credentials: CredentialStore | None = None,
    ) -> None:
        """``credentials``: where the session is kept (default: this process's memory)."""
        require_http_url(base_url, "bluesky base URL")
        self.handle = handle.removeprefix("@")
        self._password = app_password
        self._credentials = credentials or LocalCredentials()
        self._credential_name = f"bluesky:{self.handle}"
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers={"User-Agent": "broadcaster"}, timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = BlueskySettings.from_core(settings)
        if config is None:
            return None
        assert config.bluesky_handle and config.bluesky_app_password  # required
        return cls(
            config.bluesky_handle,
            config.bluesky_app_password.get_secret_value(),
            base_url=config.bluesky_base_url,
            timeout_s=settings.http_timeout_s,
            transport=context.http_transport,
            credentials=context.credentials,
        )

    def render(self, message: Message) -> Rendition:
        """The post text; ``reply_to`` is null here because only ``publish`` sees the thread."""
        return render_post(message, self.name, LIMIT, measure, fit=_shortening_measure)

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        text = rendition["text"]
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": iso(datetime.now(UTC)),
            # the update's language first; the reader's (the status word) when the update lacks it
            "langs": list(dict.fromkeys([message.content_language, message.language])),
            "facets": link_facets(text, message.public_url),
        }
        root, last = _strong_ref(thread.get("root")), _strong_ref(thread.get("last"))
        parent = await self._existing(last) if last else None

        async def post(reply_to: StrongRef | None) -> dict[str, Any]:
            if reply_to is None:
                return await self._create_record(record)
            return await self._create_record({**record, "reply": {"root": root or reply_to, "parent": reply_to}})

        created, replied = await reply_or_start(post, parent)
        ref = {"uri": str(created["uri"]), "cid": str(created["cid"])}
        did, _, rkey = ref["uri"].removeprefix("at://").partition(f"/{POST}/")
        return Published(
            provider_id=ref["uri"],
            url=f"https://bsky.app/profile/{did}/post/{rkey}",
            thread={"root": (root or parent) if replied else ref, "last": ref},
        )

    async def check(self) -> str:
        """Whom the session belongs to (``getSession``, signing in only if no session is stored); posts nothing."""
        response = await self._authed("GET", "com.atproto.server.getSession", await self._session())
        if response.is_error:
            raise _translate(response)
        try:
            return f"authenticated as @{response.json()['handle']}"
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"bluesky answered {response.status_code} to getSession without a handle") from exc

    async def replies(self, thread: Thread) -> list[Reply]:
        """``Listening``: ``app.bsky.feed.getPostThread`` of the root through the PDS (which proxies it to the
        AppView): the replies by other accounts (a deleted root has none)."""
        root = _strong_ref(thread.get("root")) or _strong_ref(thread.get("last"))
        if root is None:
            return []
        session = await self._session()
        params = {"uri": root["uri"], "depth": "20", "parentHeight": "0"}  # 20 levels of replies under the root
        response = await self._authed("GET", "app.bsky.feed.getPostThread", session, params=params)
        if response.status_code in (400, 404) and _error_name(response) == "NotFound":
            return []
        if response.is_error:
            raise _translate(response)
        try:
            return bluesky_replies(response.json(), session.did)
        except ValueError as exc:
            raise RetryableError(f"bluesky answered {response.status_code} to getPostThread without JSON") from exc

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _create_record(self, record: dict[str, Any]) -> dict[str, Any]:
        session = await self._session()
        body = {"repo": session.did, "collection": POST, "record": record}
        response = await self._authed("POST", "com.atproto.repo.createRecord", session, json=body)
        if response.is_error:
            raise _translate(response, replying="reply" in record)
        try:
            created = response.json()
        except ValueError:
            created = None
        if not isinstance(created, dict) or "uri" not in created or "cid" not in created:
            raise PermanentError(f"bluesky answered {response.status_code} without uri and cid")
        return created

    async def _existing(self, ref: StrongRef) -> StrongRef | None:
        """``ref`` with its current cid, or ``None`` when the record is deleted."""
        repo, _, rkey = ref["uri"].removeprefix("at://").partition(f"/{POST}/")
        params = {"repo": repo, "collection": POST, "rkey": rkey}
        response = await self._xrpc("GET", "com.atproto.repo.getRecord", params=params)
        if response.status_code == 404 or _error_name(response) == "RecordNotFound":
            return None
        if response.is_error:
            raise _translate(response)
        return {"uri": ref["uri"], "cid": str(response.json().get("cid") or ref["cid"])}

    async def _session(self, rejected: str | None = None) -> _Session:
        """The account's stored session; renewed first when near expiry or its access JWT was ``rejected``."""
        stored = await self._credentials.load(self._credential_name)
        if not _usable(stored, rejected) and not _blocked(stored):

            async def renew(current: Credential | None) -> Credential | None:
                return None if _usable(current, rejected) else await self._renewed(current)

            stored = await self._credentials.rotate(self._credential_name, renew)
        return _Session.of(stored, self.handle)

    async def _authed(
        self,
        method: str,
        nsid: str,
        session: _Session,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A call with the access JWT; when the PDS refuses it, renew the session and try once more.

        Not only ``ExpiredToken``: a stored session the PDS no longer knows (revoked, or a PDS
        restored from backup) is refused as ``InvalidToken`` or ``AuthenticationRequired``.
        """
        response = await self._xrpc(method, nsid, json=json, params=params, token=session.access_jwt)
        if response.status_code in (400, 401) and _error_name(response) in _SESSION_REFUSED:
            session = await self._session(rejected=session.access_jwt)
            response = await self._xrpc(method, nsid, json=json, params=params, token=session.access_jwt)
        return response

    async def _renewed(self, current: Credential | None) -> Credential:
        """``refreshSession`` with the stored refresh JWT; ``createSession`` when there is none or it is refused."""
        value = current.value if current else {}
        if value.get("refresh_jwt"):
            token = str(value["refresh_jwt"])
            response = await self._xrpc("POST", "com.atproto.server.refreshSession", token=token)
            if response.is_success:
                return _stored(response, str(value.get("did") or ""))
            if not (response.status_code in (400, 401) and _error_name(response) in _CREDENTIAL_ERRORS):
                raise _translate(response)
        if current is not None and _blocked(current):  # stored by another worker meanwhile
            raise _sign_in_refused(current.value, self.handle)
        body = {"identifier": self.handle, "password": self._password}
        response = await self._xrpc("POST", "com.atproto.server.createSession", json=body)
        if response.is_success:
            return _stored(response, "")
        error = _translate(response)
        if not isinstance(error, RateLimited):
            raise error
        wait_s = SIGN_IN_BACKOFF_S if error.retry_after_s is None else error.retry_after_s
        return Credential({"blocked_until": time.time() + wait_s, "reason": error.reason})

    async def _xrpc(
        self,
        method: str,
        nsid: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        url = f"/xrpc/{nsid}"
        with map_transport_errors("bluesky"):
            return await self._client.request(method, url, json=json, params=params, headers=headers)


def _stored(response: httpx.Response, did: str) -> Credential:
    """A session answer as stored: the two JWTs and the did; it expires with the access JWT."""
    try:
        body = response.json()
        value = {"access_jwt": str(body["accessJwt"]), "refresh_jwt": str(body["refreshJwt"])}
        value["did"] = str(body.get("did") or did)
    except (ValueError, KeyError, TypeError) as exc:
        raise RetryableError(f"bluesky answered {response.status_code} without a session") from exc
    return Credential(value, _jwt_expiry(value["access_jwt"]))


def _jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT, read without checking the signature (the PDS does that); None if unreadable."""
    try:
        claims = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["exp"]
        return datetime.fromtimestamp(float(exp), UTC)
    except (IndexError, ValueError, KeyError, TypeError, OverflowError):
        return None


def _usable(stored: Credential | None, rejected: str | None) -> bool:
    if stored is None or not stored.value.get("access_jwt") or stored.value["access_jwt"] == rejected:
        return False
    return stored.expires_at is None or datetime.now(UTC) < stored.expires_at - timedelta(seconds=REFRESH_MARGIN_S)


def _sign_in_refused(value: Mapping[str, Any], handle: str) -> RateLimited:
    """No sign-in before createSession's limit resets: the stored 429 again, with the time left."""
    wait_s = max(0.0, float(value.get("blocked_until") or 0) - time.time())
    return RateLimited(f"{value.get('reason') or 'bluesky gave no session'} (for {handle})", wait_s)


def _blocked(stored: Credential | None) -> bool:
    """Whether ``stored`` is createSession's 429, not yet over."""
    return stored is not None and float(stored.value.get("blocked_until") or 0) > time.time()


def _strong_ref(value: Any) -> StrongRef | None:
    if isinstance(value, Mapping) and value.get("uri") and value.get("cid"):
        return {"uri": str(value["uri"]), "cid": str(value["cid"])}
    return None


def _error_name(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error") or "") if isinstance(body, dict) else ""


def _translate(response: httpx.Response, *, replying: bool = False) -> DeliveryError:
    """The PDS's error answer as a delivery error."""
    status, error = response.status_code, _error_name(response)
    try:
        message = str(response.json().get("message") or "")
    except (ValueError, AttributeError):
        message = response.text[:200]
    reason = f"bluesky answered {status} {error or response.reason_phrase}: {message}".rstrip(": ")
    if error == "RateLimitExceeded":  # whatever the status
        return RateLimited(reason, rate_limit_reset_seconds(response.headers, "ratelimit-reset"))
    common = http_error(response, reason, reset_header="ratelimit-reset")
    if isinstance(common, RetryableError) or status in (401, 403):
        return common  # 429, 408, 5xx, 401 and 403 read as for any provider
    if error in _CREDENTIAL_ERRORS:
        return credentials_error(reason)
    lowered = f"{error} {message}".lower()
    if replying and (status == 404 or ("reply" in lowered or "parent" in lowered or "notfound" in lowered)):
        return ReplyTargetGone(reason)
    return common
