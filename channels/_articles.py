"""What the knowledge-base channels (Zendesk Guide, Freshdesk Solutions) share; not a channel.

Both keep one article per incident and rewrite it on every update: the same rendition
(``knowledge_base/`` templates), the same stale-update guard (a late retry never puts older
guidance back in front of agents), the same JSON API seam, and a 404 read as "the article is
gone", which starts a new article instead of failing the update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from broadcaster.message import cut_at_word, one_line
from channels.base import (
    DeliveryError,
    Message,
    PermanentError,
    Published,
    Rendition,
    Thread,
    http_error,
    render_template,
    request_json,
)

REASON_MAX_CHARS = 300


class ArticleGone(PermanentError):
    """The provider answered 404: the stored article (or its section or folder) no longer exists."""


def render_article(message: Message, title_max_chars: int) -> Rendition:
    """The article's title (one line, cut at a word) and its HTML body."""
    title = one_line(render_template("knowledge_base/title.txt", message=message))
    return {
        "title": cut_at_word(title, title_max_chars, len),
        "body_html": render_template("knowledge_base/article.html", message=message),
    }


async def publish_article(
    message: Message,
    thread: Thread,
    rewrite: Callable[[str], Awaitable[Published]],
    create: Callable[[], Awaitable[Published]],
) -> Published:
    """``rewrite(article_id)`` the incident's article, or ``create()`` one when there is none or it is gone.

    An article that already shows a later update than ``message`` is left as it is.
    """
    article_id = _article_id(thread)
    if article_id is not None:
        if _int(thread.get("update_number")) > message.update_number:
            return Published(provider_id=article_id, url=thread.get("url"))
        try:
            return await rewrite(article_id)
        except ArticleGone:
            pass  # archived or deleted in the provider's own UI: start a new article
    return await create()


class ArticleErrors:
    """A provider's error answers as ``DeliveryError``s: 404 is ``ArticleGone``, the rest as ``http_error``.

    ``reasons(body)`` lists what the provider's JSON error body says; the reason carries it::

        translate_error = ArticleErrors("freshdesk", lambda body: [str(body.get("message", ""))])
        translate_error(response, "PUT /api/v2/solutions/articles/1")  # -> a DeliveryError
    """

    def __init__(self, provider: str, reasons: Callable[[Mapping[str, Any]], list[str]]) -> None:
        self.provider = provider
        self._reasons = reasons

    def __call__(self, response: httpx.Response, action: str) -> DeliveryError:
        status = response.status_code
        reason = f"{self.provider} answered {status} to {action}: {self.reason(response)}"
        if status == 404:
            return ArticleGone(reason)
        return http_error(response, reason)

    def reason(self, response: httpx.Response) -> str:
        """The provider's own words for an error answer, on one line."""
        try:
            body = response.json()
        except ValueError:
            return one_line(response.text)[:REASON_MAX_CHARS] or response.reason_phrase
        if not isinstance(body, Mapping):
            return one_line(str(body))[:REASON_MAX_CHARS]
        return one_line("; ".join(self._reasons(body)))[:REASON_MAX_CHARS] or response.reason_phrase


async def call(
    client: httpx.AsyncClient, method: str, path: str, payload: Mapping[str, Any] | None, translate: ArticleErrors
) -> Mapping[str, Any]:
    """Send one API call with a JSON ``payload`` (``None``: no body, as for a ``GET``); every provider
    answer becomes a result or a ``DeliveryError``."""
    return await request_json(
        client,
        method,
        path,
        json=payload,
        provider=translate.provider,
        base_url=str(client.base_url).rstrip("/"),
        translate=translate,
    )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _article_id(thread: Thread) -> str | None:
    value = thread.get("article_id")
    return str(value) if isinstance(value, (str, int)) and str(value) else None
