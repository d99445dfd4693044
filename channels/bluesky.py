"""Bluesky: one ``app.bsky.feed.post`` record per update, later updates threaded as replies.

Auth is an app password exchanged for a session (``createSession``), kept for the life of
the channel and refreshed with ``refreshSession`` when a call answers ``ExpiredToken``.
A post is limited to 300 graphemes (and 3000 UTF-8 bytes); links are not counted
specially but are only clickable through a facet, whose offsets are UTF-8 *byte* offsets.

A PDS accepts a reply to a deleted post without complaint, so before replying the channel
asks for the parent record; when it is gone the update starts a new thread.

Thread state: ``{"root": {"uri", "cid"}, "last": {"uri", "cid"}}`` (strong refs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import grapheme
import httpx
from pydantic import SecretStr

from broadcaster.render import iso
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
    ) -> None:
        require_http_url(base_url, "bluesky base URL")
        self.handle = handle.removeprefix("@")
        self._password = app_password
        self._session: _Session | None = None
        self._session_lock = asyncio.Lock()
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
            "langs": ["en"],
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

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _create_record(self, record: dict[str, Any]) -> dict[str, Any]:
        session = await self._current_session()
        body = {"repo": session.did, "collection": POST, "record": record}
        response = await self._authed("com.atproto.repo.createRecord", body, session)
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

    async def _current_session(self) -> _Session:
        async with self._session_lock:
            if self._session is None:
                self._session = await self._create_session()
            return self._session

    async def _authed(self, nsid: str, body: dict[str, Any], session: _Session) -> httpx.Response:
        """POST with the access token; on ``ExpiredToken`` refresh the session and try once more."""
        response = await self._xrpc("POST", nsid, json=body, token=session.access_jwt)
        if response.status_code in (400, 401) and _error_name(response) == "ExpiredToken":
            session = await self._refreshed(session)
            response = await self._xrpc("POST", nsid, json=body, token=session.access_jwt)
        return response

    async def _refreshed(self, stale: _Session) -> _Session:
        async with self._session_lock:
            if self._session is not None and self._session != stale:
                return self._session  # another publish refreshed it meanwhile
            response = await self._xrpc("POST", "com.atproto.server.refreshSession", token=stale.refresh_jwt)
            if response.is_success:
                self._session = _session_from(response, stale.did)
            elif response.status_code in (400, 401) and _error_name(response) in _CREDENTIAL_ERRORS:
                self._session = await self._create_session()  # the refresh token expired too
            else:
                raise _translate(response)
            return self._session

    async def _create_session(self) -> _Session:
        body = {"identifier": self.handle, "password": self._password}
        response = await self._xrpc("POST", "com.atproto.server.createSession", json=body)
        if response.is_error:
            raise _translate(response)
        return _session_from(response, None)

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


def _session_from(response: httpx.Response, did: str | None) -> _Session:
    try:
        body = response.json()
        return _Session(str(body["accessJwt"]), str(body["refreshJwt"]), str(body.get("did") or did))
    except (ValueError, KeyError, TypeError) as exc:
        raise RetryableError(f"bluesky answered {response.status_code} without a session") from exc


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
