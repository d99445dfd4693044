"""Zendesk Guide: one Help Center article per incident, rewritten on every update.

The contact centre reads it to answer callers: the public update verbatim, then the
talking points, approved answers, what not to say and whom to escalate to. The first
update creates the article in the configured section; later updates replace the
article's translation in the configured locale, so agents always find one article per
incident, never a trail of stale ones. A resolved incident keeps its article, titled
RESOLVED and labelled ``resolved``. If someone archived the article, the next update
starts a new one.

Settings: ``BROADCASTER_ZENDESK_BASE_URL`` (``https://acme.zendesk.com``), ``_EMAIL``,
``_API_TOKEN``, ``_SECTION_ID`` and optionally ``_LOCALE`` (default ``en-us``).
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
    credentials_error,
    require_http_url,
)

BASE_LABELS = ("incident", "broadcaster")
RESOLVED_LABEL = "resolved"
AGENT_ROLES = ("agent", "admin")  # Zendesk user roles that may write Help Center articles


class ZendeskSettings(ChannelSettings):
    """``BROADCASTER_ZENDESK_BASE_URL``, ``_EMAIL``, ``_API_TOKEN``, ``_SECTION_ID`` (all, or none);
    ``_LOCALE``, and ``_PERMISSION_GROUP_ID`` / ``_USER_SEGMENT_ID`` for who may read the articles."""

    title: ClassVar[str] = "Zendesk"
    required: ClassVar[tuple[str, ...]] = (
        "zendesk_base_url",
        "zendesk_email",
        "zendesk_api_token",
        "zendesk_section_id",
    )
    example: ClassVar[Mapping[str, Any]] = {
        "zendesk_base_url": "https://acme.zendesk.example.test",
        "zendesk_email": "agent@example.test",
        "zendesk_api_token": "token",
        "zendesk_section_id": "360001",
    }

    zendesk_base_url: str | None = None
    zendesk_email: str | None = None
    zendesk_api_token: SecretStr | None = None
    zendesk_section_id: str | None = None
    zendesk_locale: str = "en-us"
    zendesk_permission_group_id: int | None = None
    zendesk_user_segment_id: int | None = None  # set an agents-only segment: articles hold agent notes


class ZendeskChannel:
    """Publishes the contact centre's article for an incident to Zendesk Guide.

    ``thread`` holds ``article_id``, ``url``, ``locale``, ``labels`` and the
    ``update_number`` last written; an update older than that one is not written again,
    so a late retry can never put stale guidance back in front of agents.
    """

    name: ClassVar[str] = "zendesk"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = False  # a page updated in place, not a message: shown even without notifications
    publishes_drills: ClassVar[bool] = False  # public: a drill never goes here
    title: ClassVar[str] = "Zendesk Guide"
    title_max_chars: ClassVar[int] = 240
    limit: ClassVar[int | None] = title_max_chars  # the article title; the body is unbounded
    limit_unit: ClassVar[LimitUnit | None] = LimitUnit.CHARACTERS
    settings_class: ClassVar[type[ChannelSettings]] = ZendeskSettings

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: SecretStr | str,
        section_id: str,
        *,
        locale: str = "en-us",
        permission_group_id: int | None = None,
        user_segment_id: int | None = None,
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        require_http_url(base_url, "BROADCASTER_ZENDESK_BASE_URL")
        if not section_id.isdigit():
            raise ConfigError(f"BROADCASTER_ZENDESK_SECTION_ID must be a number, not {section_id!r}")
        token = api_token.get_secret_value() if isinstance(api_token, SecretStr) else api_token
        self.base_url = base_url.rstrip("/")
        self.section_id = section_id
        self.locale = locale
        self.permission_group_id = permission_group_id
        self.user_segment_id = user_segment_id
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            auth=httpx.BasicAuth(f"{email}/token", token),
            headers={"Accept": "application/json", "User-Agent": "broadcaster"},
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = ZendeskSettings.from_core(settings)
        if config is None:
            return None
        assert config.zendesk_base_url and config.zendesk_email and config.zendesk_section_id  # required
        assert config.zendesk_api_token is not None
        return cls(
            config.zendesk_base_url,
            config.zendesk_email,
            config.zendesk_api_token,
            config.zendesk_section_id,
            locale=config.zendesk_locale,
            permission_group_id=config.zendesk_permission_group_id,
            user_segment_id=config.zendesk_user_segment_id,
            timeout_s=settings.http_timeout_s,
            transport=context.http_transport,
        )

    def render(self, message: Message) -> Rendition:
        return render_article(message, self.title_max_chars)

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        labels = [*BASE_LABELS, RESOLVED_LABEL] if message.is_closing else list(BASE_LABELS)

        async def rewrite(article_id: str) -> Published:
            await self._update(article_id, thread, rendition, labels)
            return self._published(article_id, thread.get("url"), thread, labels, message)

        async def create() -> Published:
            article = await self._create(rendition, labels)
            new_id = str(article["id"])
            return self._published(new_id, article.get("html_url"), {"locale": self.locale}, labels, message)

        return await publish_article(message, thread, rewrite, create)

    async def check(self) -> str:
        """Pre-flight (``Checkable``): the API user is an agent (``GET /api/v2/users/me.json``) and the
        section exists (``GET /api/v2/help_center/sections/{id}.json``, the section articles go to); writes nothing."""
        me = (await self._request("GET", "/api/v2/users/me.json", None)).get("user")
        role = me.get("role") if isinstance(me, Mapping) else None
        # Zendesk answers an unauthenticated /users/me with its anonymous end user, not a 401.
        if not isinstance(me, Mapping) or me.get("id") is None or role not in AGENT_ROLES:
            raise credentials_error(f"zendesk: the API token signs in as {role or 'nobody'}, not an agent")
        path = f"/api/v2/help_center/sections/{self.section_id}.json"
        section = (await self._request("GET", path, None)).get("section")
        if not isinstance(section, Mapping):
            raise RetryableError(f"zendesk: unexpected answer to GET {path}: no section")
        return f"signed in as {me.get('email')} ({role}); section {self.section_id} exists ({section.get('name')!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _create(self, rendition: Rendition, labels: list[str]) -> Mapping[str, Any]:
        article: dict[str, Any] = {
            "title": rendition["title"],
            "body": rendition["body_html"],
            "locale": self.locale,
            "user_segment_id": self.user_segment_id,
            "label_names": labels,
        }
        if self.permission_group_id is not None:
            article["permission_group_id"] = self.permission_group_id
        path = f"/api/v2/help_center/sections/{self.section_id}/articles.json"
        answer = await self._request("POST", path, {"article": article})
        created = answer.get("article")
        if not isinstance(created, Mapping) or "id" not in created:
            raise RetryableError(f"zendesk: unexpected answer to POST {path}: no article id")
        return created

    async def _update(self, article_id: str, thread: Thread, rendition: Rendition, labels: list[str]) -> None:
        locale = thread.get("locale") or self.locale
        translation = {"title": rendition["title"], "body": rendition["body_html"]}
        await self._request(
            "PUT", f"/api/v2/help_center/articles/{article_id}/translations/{locale}.json", {"translation": translation}
        )
        # Labels belong to the article, not its translation: a second call, only when they change.
        if list(thread.get("labels") or ()) != labels:
            await self._request(
                "PUT", f"/api/v2/help_center/articles/{article_id}.json", {"article": {"label_names": labels}}
            )

    def _published(self, article_id: str, url: Any, thread: Thread, labels: list[str], message: Message) -> Published:
        state = {
            "article_id": article_id,
            "url": url,
            "locale": thread.get("locale") or self.locale,
            "labels": labels,
            "update_number": message.update_number,
        }
        return Published(provider_id=article_id, url=url, thread=state)

    async def _request(self, method: str, path: str, payload: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return await call(self._client, method, path, payload, translate_error)

    def __repr__(self) -> str:
        return f"ZendeskChannel(base_url={self.base_url!r}, section_id={self.section_id!r})"


def _reasons(body: Mapping[str, Any]) -> list[str]:
    # Zendesk answers {"error": "RecordNotFound", "description": "..."}, {"error": {"title", "message"}},
    # {"title": "Invalid attribute", "message": "..."} or {"details": {field: [{"description"}]}}.
    error = body.get("error")
    parts: list[str] = []
    if isinstance(error, Mapping):
        parts += [str(error[key]) for key in ("title", "message") if error.get(key)]
    elif error:
        parts.append(str(error))
    parts += [str(body[key]) for key in ("title", "description", "message") if body.get(key)]
    details = body.get("details")
    if isinstance(details, Mapping):
        for field, problems in details.items():
            for problem in problems if isinstance(problems, list) else [problems]:
                text = problem.get("description") if isinstance(problem, Mapping) else problem
                parts.append(f"{field}: {text}")
    return parts


translate_error = ArticleErrors("zendesk", _reasons)
"""Zendesk's error answer as broadcaster's ``DeliveryError``, with Zendesk's own reason."""
