"""X: one post per update through API v2; later updates reply to the incident's previous post.

X weighs text as twitter-text (config v3) does: after NFC normalisation a code point in
U+0000-U+10FF (Latin, Greek, Cyrillic, Hebrew, Arabic, Indic...) or in three small
punctuation ranges weighs 1, any other (CJK, Hangul, "…", symbols) 2, a whole emoji
sequence 2, every URL 23; the limit is 280. A domain-like word without a scheme (``api.example.com``) may be
linked by X too, so it is counted as at least 23 to stay on the safe side.

X has no idempotency key; a retry after a timeout may be refused as duplicate content.

Three ways to sign in, chosen by which settings are given (``XSettings.sign_in``): OAuth 1.0a
user context (consumer key and secret + access token and secret, which do not expire; every
request signed HMAC-SHA1 by oauthlib), OAuth 2.0 with a refresh token (the access token is
refreshed before it expires and the rotated refresh token kept in the shared credential store,
``broadcaster.delivery.credentials``), or a static OAuth 2.0 access token.

Thread state: ``{"root_id": first post of the thread, "last_id": latest post}``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import grapheme
import httpx
from pydantic import Field, SecretStr

from broadcaster.delivery.credentials import CredentialStore
from channels._social import URL, error_text, last_post_id, next_thread, render_post, reply_or_start
from channels._x_auth import OAuth1Auth, OAuth1User, OAuth2Auth, OAuth2User
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
    ReplyTargetGone,
    Settings,
    Thread,
    configured,
    env_name,
    http_error,
    map_transport_errors,
    require_http_url,
)

LIMIT = 280
URL_COST = 23

# twitter-text v3: code points in these ranges weigh 1, all others 2.
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
_BARE_DOMAIN = re.compile(
    r"(?<![\w@/.-])(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/[^\s]*?)?(?=[.,;:!?)\]'\"]*(?:\s|$))", re.IGNORECASE
)


def _code_point_weight(char: str) -> int:
    code = ord(char)
    return 1 if any(low <= code <= high for low, high in _LIGHT_RANGES) else 2


def _is_emoji_sequence(cluster: str) -> bool:
    # A multi-code-point cluster with a pictograph, a variation selector, a ZWJ or a keycap.
    return len(cluster) > 1 and any(
        ord(c) >= 0x1F000 or 0x2190 <= ord(c) <= 0x2BFF or c in "\ufe0f\u200d\u20e3" for c in cluster
    )


def _weigh(text: str) -> int:
    return sum(
        2 if _is_emoji_sequence(cluster) else sum(_code_point_weight(c) for c in cluster)
        for cluster in grapheme.graphemes(text)
    )


def _weigh_words(text: str) -> int:
    total = _weigh(text)
    for match in _BARE_DOMAIN.finditer(text):
        weight = _weigh(match.group())
        total += max(URL_COST, weight) - weight
    return total


def weighted_length(text: str) -> int:
    """The length X checks against 280."""
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for match in URL.finditer(text):
        total += _weigh_words(text[position : match.start()]) + URL_COST
        position = match.end()
    return total + _weigh_words(text[position:])


_OAUTH1 = ("x_consumer_key", "x_consumer_secret", "x_access_token", "x_access_token_secret")
_OAUTH2 = ("x_client_id", "x_refresh_token")
_SIGN_IN = (*_OAUTH1, *_OAUTH2, "x_client_secret")


class XSettings(ChannelSettings):
    """``BROADCASTER_X_*``: one of three ways to sign in (``sign_in``), ``_BASE_URL``, ``_REFRESH_MARGIN_S``."""

    title: ClassVar[str] = "X"
    required: ClassVar[tuple[str, ...]] = ("x_access_token",)  # the simplest way in; any sign-in setting enables X
    example: ClassVar[Mapping[str, Any]] = {"x_base_url": "https://api.x.example.test", "x_access_token": "token"}

    x_base_url: str = "https://api.x.com"
    x_access_token: SecretStr | None = None  # alone: a static OAuth 2.0 token; with the three below: OAuth 1.0a
    x_access_token_secret: SecretStr | None = None
    x_consumer_key: SecretStr | None = None
    x_consumer_secret: SecretStr | None = None
    x_client_id: str | None = None
    x_client_secret: SecretStr | None = None
    x_refresh_token: SecretStr | None = None
    x_refresh_margin_s: float = Field(60.0, ge=0)

    @classmethod
    def from_core(cls, settings: Settings) -> Self | None:
        """``None`` when no sign-in setting is given; which way they sign in is ``sign_in``'s question."""
        values = settings.extra_values(cls.model_fields)
        return cls.from_values(values) if any(values.get(name) for name in _SIGN_IN) else None

    def sign_in(self, credentials: CredentialStore) -> str | OAuth1User | OAuth2User:
        """OAuth 1.0a, OAuth 2.0 with refresh, or a static token, by the settings given; else ``ConfigError``."""
        oauth1 = [n for n in ("x_consumer_key", "x_consumer_secret", "x_access_token_secret") if _given(self, n)]
        oauth2 = [n for n in ("x_client_id", "x_client_secret", "x_refresh_token") if _given(self, n)]
        if oauth1 and oauth2:
            names = ", ".join(env_name(n) for n in oauth1 + oauth2)
            raise ConfigError(f"X settings mix OAuth 1.0a and OAuth 2.0 ({names}): set one of them")
        if oauth1:
            _require("X (OAuth 1.0a)", self, _OAUTH1)
            return OAuth1User(*(_secret(self, name) for name in _OAUTH1))
        if oauth2:
            _require("X (OAuth 2.0 with a refresh token)", self, _OAUTH2)
            if self.x_access_token:
                raise ConfigError(
                    "X: unset BROADCASTER_X_ACCESS_TOKEN or BROADCASTER_X_REFRESH_TOKEN "
                    "(with a refresh token, access tokens are obtained from it)"
                )
            client_secret = self.x_client_secret.get_secret_value() if self.x_client_secret else None
            return OAuth2User(
                str(self.x_client_id),
                _secret(self, "x_refresh_token"),
                client_secret or None,
                credentials,
                self.x_refresh_margin_s,
            )
        return _secret(self, "x_access_token")


def _given(config: XSettings, name: str) -> bool:
    value = getattr(config, name)
    return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)


def _secret(config: XSettings, name: str) -> str:
    value = getattr(config, name)
    return str(value.get_secret_value() if isinstance(value, SecretStr) else value)


def _require(title: str, config: XSettings, names: tuple[str, ...]) -> None:
    required = {env_name(name): getattr(config, name) for name in names}
    if not configured(title, required):  # some other sign-in setting was given, none of these
        raise ConfigError(f"{title} is half configured: set {', '.join(required)}")


class XChannel:
    """Posts each update to X; follow-ups reply to the incident's previous post."""

    name: ClassVar[str] = "x"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = True  # a message people receive: held back when deliver_notifications is false
    publishes_drills: ClassVar[bool] = False  # public: a drill never goes here
    title: ClassVar[str] = "X"
    limit: ClassVar[int | None] = LIMIT
    limit_unit: ClassVar[LimitUnit | None] = LimitUnit.WEIGHTED
    settings_class: ClassVar[type[ChannelSettings]] = XSettings

    def __init__(
        self,
        sign_in: str | OAuth1User | OAuth2User,
        *,
        base_url: str = "https://api.x.com",
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``sign_in``: a static access token, or ``OAuth1User`` / ``OAuth2User``."""
        require_http_url(base_url, "X base URL")
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers={"User-Agent": "broadcaster"}, timeout=timeout_s, transport=transport
        )
        if isinstance(sign_in, OAuth1User):
            self._client.auth = OAuth1Auth(sign_in)
        elif isinstance(sign_in, OAuth2User):
            self._client.auth = OAuth2Auth(sign_in, self._client)
        else:
            self._client.headers["Authorization"] = f"Bearer {sign_in}"

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = XSettings.from_core(settings)
        if config is None:
            return None
        return cls(
            config.sign_in(context.credentials),
            base_url=config.x_base_url,
            timeout_s=settings.http_timeout_s,
            transport=context.http_transport,
        )

    def render(self, message: Message) -> Rendition:
        """The post text; ``reply_to`` is null here because only ``publish`` sees the thread."""
        return render_post(message, self.name, LIMIT, weighted_length, link_cost=URL_COST)

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        async def post(reply_to: str | None) -> str:
            return await self._post(rendition["text"], in_reply_to=reply_to)

        post_id, replied = await reply_or_start(post, last_post_id(thread))
        url = f"https://x.com/i/status/{post_id}"
        return Published(provider_id=post_id, url=url, thread=next_thread(thread, post_id, replied))

    async def check(self) -> str:
        """Who the settings sign in as (``GET /2/users/me``); posts nothing."""
        with map_transport_errors("X", "GET /2/users/me"):
            response = await self._client.get("/2/users/me")
        if response.is_error:
            raise _translate(response)
        try:
            return f"authenticated as @{response.json()['data']['username']}"
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"X answered {response.status_code} without a user") from exc

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, text: str, in_reply_to: str | None = None) -> str:
        body: dict[str, Any] = {"text": text}
        if in_reply_to:
            body["reply"] = {"in_reply_to_tweet_id": in_reply_to}
        with map_transport_errors("X"):
            response = await self._client.post("/2/tweets", json=body)
        if response.is_error:
            raise _translate(response, replying=in_reply_to is not None)
        try:
            return str(response.json()["data"]["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"X answered {response.status_code} without a post id") from exc


def _translate(response: httpx.Response, *, replying: bool = False) -> DeliveryError:
    """X's error answer as a delivery error."""
    status = response.status_code
    detail = error_text(response, _error_detail)
    reason = f"X answered {status}: {detail}"
    lowered = detail.lower()
    # X answers 403 "You attempted to reply to a Tweet that is deleted or not visible to you."
    if replying and (status == 404 or (status in (400, 403, 422) and "reply" in lowered)):
        return ReplyTargetGone(reason)
    if status == 403 and "duplicate" in lowered:
        return PermanentError(reason)
    return http_error(response, reason, reset_header="x-rate-limit-reset")


def _error_detail(body: dict[str, Any]) -> str:
    # X answers {"detail", "title", "errors": [{"message"}]} (API v2) or {"errors": [{"message"}]} (v1.1).
    errors = body.get("errors") or ()
    messages = [str(e["message"]) for e in errors if isinstance(e, dict) and e.get("message")]
    parts = [str(body["detail"])] if body.get("detail") else []
    return "; ".join(parts + messages) or str(body.get("title") or "")
