"""Freshdesk: one published Solutions article per incident, rewritten on every update.

The contact centre reads it to answer callers: the public update verbatim, then the
talking points, approved answers, what not to say and whom to escalate to. The first
update creates the article in the configured folder (whose visibility decides who can
read it: use an agents-only folder); later updates replace its title, body and tags. A
resolved incident keeps its article, titled RESOLVED and tagged ``resolved``. If someone
deleted the article, the next update starts a new one.

Settings: ``BROADCASTER_FRESHDESK_BASE_URL`` (``https://acme.freshdesk.com``),
``_API_KEY`` and ``_FOLDER_ID``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx
from pydantic import SecretStr

from channels._articles import ArticleErrors, call, publish_article, render_article
from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    ConfigError,
    LimitUnit,
    Message,
    Published,
    Rendition,
    RetryableError,
    Settings,
    Thread,
    require_http_url,
)

BASE_TAGS = ("incident", "broadcaster")
RESOLVED_TAG = "resolved"
PUBLISHED = 2  # Freshdesk article status: 1 draft, 2 published


class FreshdeskSettings(ChannelSettings):
    """``BROADCASTER_FRESHDESK_BASE_URL``, ``_API_KEY`` and ``_FOLDER_ID`` (all, or none)."""

    title: ClassVar[str] = "Freshdesk"
    required: ClassVar[tuple[str, ...]] = ("freshdesk_base_url", "freshdesk_api_key", "freshdesk_folder_id")
    example: ClassVar[Mapping[str, Any]] = {
        "freshdesk_base_url": "https://acme.freshdesk.example.test",
        "freshdesk_api_key": "key",
        "freshdesk_folder_id": "73000012",
    }

    freshdesk_base_url: str | None = None
    freshdesk_api_key: SecretStr | None = None
    freshdesk_folder_id: str | None = None


class FreshdeskChannel:
    """Publishes the contact centre's article for an incident to Freshdesk Solutions.

    ``thread`` holds ``article_id``, ``url`` and the ``update_number`` last written; an
    update older than that one is not written again, so a late retry can never put stale
    guidance back in front of agents.
    """

    name: ClassVar[str] = "freshdesk"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = False  # a page updated in place, not a message: shown even without notifications
    publishes_drills: ClassVar[bool] = False  # public: a drill never goes here
    title: ClassVar[str] = "Freshdesk Solutions"
    title_max_chars: ClassVar[int] = 240
    limit: ClassVar[int | None] = title_max_chars  # the article title; the body is unbounded
    limit_unit: ClassVar[LimitUnit | None] = LimitUnit.CHARACTERS
    settings_class: ClassVar[type[ChannelSettings]] = FreshdeskSettings

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | str,
        folder_id: str,
        *,
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        require_http_url(base_url, "BROADCASTER_FRESHDESK_BASE_URL")
        if not folder_id.isdigit():
            raise ConfigError(f"BROADCASTER_FRESHDESK_FOLDER_ID must be a number, not {folder_id!r}")
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self.base_url = base_url.rstrip("/")
        self.folder_id = folder_id
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            # Freshdesk takes the API key as the user name; the password is ignored, "X" by convention.
            auth=httpx.BasicAuth(key, "X"),
            headers={"Accept": "application/json", "User-Agent": "broadcaster"},
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = FreshdeskSettings.from_core(settings)
        if config is None:
            return None
        assert config.freshdesk_base_url and config.freshdesk_folder_id  # required
        assert config.freshdesk_api_key is not None
        return cls(
            config.freshdesk_base_url,
            config.freshdesk_api_key,
            config.freshdesk_folder_id,
            timeout_s=settings.http_timeout_s,
            transport=context.http_transport,
        )

    def render(self, message: Message) -> Rendition:
        return render_article(message, self.title_max_chars)

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        article = {
            "title": rendition["title"],
            "description": rendition["body_html"],
            "status": PUBLISHED,
            "tags": [*BASE_TAGS, RESOLVED_TAG] if message.is_closing else list(BASE_TAGS),
        }

        async def rewrite(article_id: str) -> Published:
            await self._request("PUT", f"/api/v2/solutions/articles/{article_id}", article)
            return self._published(article_id, message)

        async def create() -> Published:
            path = f"/api/v2/solutions/folders/{self.folder_id}/articles"
            created = await self._request("POST", path, article)
            if "id" not in created:
                raise RetryableError(f"freshdesk: unexpected answer to POST {path}: no article id")
            return self._published(str(created["id"]), message)

        return await publish_article(message, thread, rewrite, create)

    async def check(self) -> str:
        """Pre-flight (``Checkable``): the API key's agent (``GET /api/v2/agents/me``) and the folder
        articles go to (``GET /api/v2/solutions/folders/{id}``) exist; writes nothing."""
        me = await self._request("GET", "/api/v2/agents/me", None)
        contact = me.get("contact")
        agent = (contact.get("email") if isinstance(contact, Mapping) else None) or f"agent {me.get('id')}"
        path = f"/api/v2/solutions/folders/{self.folder_id}"
        folder = await self._request("GET", path, None)
        if "id" not in folder:
            raise RetryableError(f"freshdesk: unexpected answer to GET {path}: no folder id")
        return f"signed in as {agent}; folder {self.folder_id} exists ({folder.get('name')!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def _published(self, article_id: str, message: Message) -> Published:
        url = f"{self.base_url}/a/solutions/articles/{article_id}"
        state = {"article_id": article_id, "url": url, "update_number": message.update_number}
        return Published(provider_id=article_id, url=url, thread=state)

    async def _request(self, method: str, path: str, payload: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return await call(self._client, method, path, payload, translate_error)

    def __repr__(self) -> str:
        return f"FreshdeskChannel(base_url={self.base_url!r}, folder_id={self.folder_id!r})"


def _reasons(body: Mapping[str, Any]) -> list[str]:
    # Freshdesk answers {"code", "message"} or
    # {"description": "Validation failed", "errors": [{"field", "message", "code"}]}.
    parts = [str(body[key]) for key in ("description", "code", "message") if body.get(key)]
    errors = body.get("errors")
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, Mapping):
            parts.append(f"{error.get('field', '?')}: {error.get('message', '')} ({error.get('code', '')})")
    return parts


translate_error = ArticleErrors("freshdesk", _reasons)
"""Freshdesk's error answer as broadcaster's ``DeliveryError``, with Freshdesk's own reason."""
