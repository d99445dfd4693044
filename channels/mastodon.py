"""Mastodon: one status per update; later updates reply to the incident's previous status.

Mastodon counts a status in grapheme clusters with every http(s) URL as 23 characters
(its ``StatusLengthValidator``), so ``render`` measures the same way. Every attempt for
one update carries the same ``Idempotency-Key``: Mastodon answers a repeated key with the
status it already made, so a retry after a timeout never posts twice.

Thread state: ``{"root_id": first status of the thread, "last_id": latest status}``.

Listening (``replies``): the thread's descendants by other accounts (``GET /api/v1/statuses/{root}/context``)
and the mentions that answer one of our statuses (``GET /api/v1/notifications?types[]=mention``); the
token needs the ``read:statuses`` and ``read:notifications`` scopes besides ``write:statuses``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import grapheme
import httpx
from pydantic import SecretStr

from channels._replies import mastodon_account_id, mastodon_reply
from channels._social import URL, error_text, last_post_id, next_thread, render_post, reply_or_start
from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    ConfigError,
    DeliveryError,
    LimitUnit,
    Message,
    PermanentError,
    Published,
    Rendition,
    Reply,
    ReplyKind,
    ReplyTargetGone,
    RetryableError,
    Settings,
    Thread,
    http_error,
    map_transport_errors,
    require_http_url,
)

LIMIT = 500
URL_COST = 23
VISIBILITIES = frozenset({"public", "unlisted", "private", "direct"})


def measure(text: str) -> int:
    """The length Mastodon checks against its limit: graphemes, each URL as 23."""
    return int(grapheme.length(URL.sub("x" * URL_COST, text)))


def idempotency_key(message: Message) -> str:
    """The same for every attempt at one update, different for every update."""
    return f"broadcaster-{message.update_id}"


class MastodonSettings(ChannelSettings):
    """``BROADCASTER_MASTODON_BASE_URL`` and ``_ACCESS_TOKEN`` (both, or neither), ``_VISIBILITY``."""

    title: ClassVar[str] = "Mastodon"
    required: ClassVar[tuple[str, ...]] = ("mastodon_base_url", "mastodon_access_token")
    example: ClassVar[Mapping[str, Any]] = {
        "mastodon_base_url": "https://social.example.test",
        "mastodon_access_token": "token",
    }

    mastodon_base_url: str | None = None
    mastodon_access_token: SecretStr | None = None
    mastodon_visibility: str = "public"


class MastodonChannel:
    """Posts each update as a status; follow-ups thread under the incident's first one."""

    name: ClassVar[str] = "mastodon"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = False  # public: a drill never goes here
    title: ClassVar[str] = "Mastodon"
    limit: ClassVar[int | None] = LIMIT
    limit_unit: ClassVar[LimitUnit | None] = LimitUnit.GRAPHEMES  # each URL counts 23
    settings_class: ClassVar[type[ChannelSettings]] = MastodonSettings

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        visibility: str = "public",
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        require_http_url(base_url, "mastodon base URL")
        if visibility not in VISIBILITIES:
            allowed = ", ".join(sorted(VISIBILITIES))
            raise ConfigError(f"mastodon visibility must be one of {allowed}, not {visibility!r}")
        self.visibility = visibility
        self._account_id: str | None = None  # ours, read once (verify_credentials) to tell our statuses apart
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {access_token}", "User-Agent": "broadcaster"},
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = MastodonSettings.from_core(settings)
        if config is None:
            return None
        assert config.mastodon_base_url and config.mastodon_access_token  # required
        return cls(
            config.mastodon_base_url,
            config.mastodon_access_token.get_secret_value(),
            visibility=config.mastodon_visibility,
            timeout_s=settings.http_timeout_s,
            transport=context.http_transport,
        )

    def render(self, message: Message) -> Rendition:
        """The status text; ``reply_to`` is null here because only ``publish`` sees the thread."""
        return render_post(message, self.name, LIMIT, measure, link_cost=URL_COST)

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        key = idempotency_key(message)

        async def post(reply_to: str | None) -> dict[str, Any]:
            return await self._post_status(rendition["text"], key, reply_to, message.content_language)

        status, replied = await reply_or_start(post, last_post_id(thread))
        state = next_thread(thread, status["id"], replied)
        return Published(provider_id=status["id"], url=status.get("url"), thread=state)

    async def check(self) -> str:
        """Pre-flight (``Checkable``): ``GET /api/v1/accounts/verify_credentials``; posts nothing."""
        path = "/api/v1/accounts/verify_credentials"
        with map_transport_errors("mastodon", f"GET {path}"):
            response = await self._client.get(path)
        if response.is_error:
            raise _translate(response)
        try:
            acct = str(response.json()["acct"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableError(f"mastodon answered {response.status_code} to GET {path} without an account") from exc
        return f"logged in as @{acct} at {self._client.base_url.host}"

    async def replies(self, thread: Thread) -> list[Reply]:
        """``Listening``: others' statuses in the thread and mentions answering one of ours (module docstring).

        A thread whose first status is gone has none; a token without ``read:notifications`` still reads the thread.
        """
        root = thread.get("root_id") or thread.get("last_id")
        if not root:
            return []
        if self._account_id is None:
            account = await self._get("/api/v1/accounts/verify_credentials")
            self._account_id = str(account.get("id") or "") if isinstance(account, dict) else ""
        context = await self._get(f"/api/v1/statuses/{root}/context", missing_ok=True)
        descendants = context.get("descendants") if isinstance(context, dict) else None
        statuses = [s for s in descendants or [] if isinstance(s, dict)]
        ours = {str(root)} | {str(s.get("id")) for s in statuses if mastodon_account_id(s) == self._account_id}
        found = {
            reply.provider_id: reply
            for s in statuses
            if mastodon_account_id(s) != self._account_id and (reply := mastodon_reply(s, ReplyKind.REPLY))
        }
        try:
            mentions = await self._get("/api/v1/notifications", {"types[]": "mention", "limit": "40"})
        except PermanentError:  # the token lacks read:notifications: the thread's replies are still there
            mentions = []
        for item in mentions if isinstance(mentions, list) else []:
            status = item.get("status") if isinstance(item, dict) else None
            if isinstance(status, dict) and str(status.get("in_reply_to_id")) in ours:
                reply = mastodon_reply(status, ReplyKind.MENTION)
                if reply is not None and reply.provider_id not in found:
                    found[reply.provider_id] = reply
        return list(found.values())

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str] | None = None, *, missing_ok: bool = False) -> Any:
        """The JSON answer to ``GET path``; None for a 404 when ``missing_ok``."""
        with map_transport_errors("mastodon", f"GET {path}"):
            response = await self._client.get(path, params=params)
        if missing_ok and response.status_code == 404:
            return None
        if response.is_error:
            raise _translate(response)
        try:
            return response.json()
        except ValueError as exc:
            raise RetryableError(f"mastodon answered {response.status_code} to GET {path} without JSON") from exc

    async def _post_status(
        self, text: str, key: str, in_reply_to_id: str | None = None, language: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": text, "visibility": self.visibility}
        if language:  # what the status is written in (ISO 639), for readers' filters and translate buttons
            body["language"] = language.partition("-")[0]
        if in_reply_to_id:
            body["in_reply_to_id"] = in_reply_to_id
        headers = {"Idempotency-Key": key}
        with map_transport_errors("mastodon"):
            response = await self._client.post("/api/v1/statuses", json=body, headers=headers)
        if response.is_error:
            raise _translate(response, replying=in_reply_to_id is not None)
        try:
            status = response.json()
            status["id"] = str(status["id"])
        except (ValueError, KeyError, TypeError) as exc:
            # Safe to retry: the same Idempotency-Key returns the status if it was made.
            raise RetryableError(f"mastodon answered {response.status_code} without a status id") from exc
        return status  # type: ignore[no-any-return]


def _translate(response: httpx.Response, *, replying: bool = False) -> DeliveryError:
    """Mastodon's error answer as a delivery error."""
    status = response.status_code
    detail = error_text(response, lambda body: str(body.get("error") or ""))
    reason = f"mastodon answered {status}: {detail}"
    if replying and (status == 404 or (status in (400, 422) and "repl" in detail.lower())):
        return ReplyTargetGone(reason)
    return http_error(response, reason, reset_header="x-ratelimit-reset")
