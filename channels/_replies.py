"""Reading what people answer to our social posts (the ``Listening`` part of Mastodon and Bluesky); not a channel.

Pure functions from the provider's JSON to ``Reply`` values; the channels make the requests.
What a stranger wrote is kept as plain text (Mastodon's HTML is reduced to text), never as markup.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from broadcaster.render import html_to_text
from channels.base import Reply, ReplyKind

MAX_TEXT_CHARS = 5000
BSKY_THREAD_VIEW = "app.bsky.feed.defs#threadViewPost"


def _when(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def mastodon_account_id(status: Mapping[str, Any]) -> str:
    account = status.get("account")
    return str(account.get("id")) if isinstance(account, Mapping) else ""


def mastodon_reply(status: Mapping[str, Any], kind: ReplyKind) -> Reply | None:
    """A Mastodon status (``Status`` entity) as a reply; None when it is not one we can read."""
    account = status.get("account")
    if not isinstance(account, Mapping) or not status.get("id"):
        return None
    text = html_to_text(str(status.get("content") or ""))
    return Reply(
        provider_id=str(status["id"]),
        author=f"@{account.get('acct') or account.get('username') or '?'}",
        text=text[:MAX_TEXT_CHARS],
        posted_at=_when(status.get("created_at")),
        url=str(status["url"]) if status.get("url") else None,
        kind=kind,
    )


def _thread_posts(view: Any) -> Iterator[Mapping[str, Any]]:
    """Every post under a ``getPostThread`` view (the root excluded), depth first, without recursion."""
    pending = list(view.get("replies") or []) if isinstance(view, Mapping) else []
    while pending:
        node = pending.pop()
        if not isinstance(node, Mapping) or node.get("$type", BSKY_THREAD_VIEW) != BSKY_THREAD_VIEW:
            continue  # a notFoundPost or blockedPost
        post = node.get("post")
        if isinstance(post, Mapping):
            yield post
        pending.extend(node.get("replies") or [])


def bluesky_replies(answer: Any, own_did: str) -> list[Reply]:
    """The replies in an ``app.bsky.feed.getPostThread`` answer (its ``thread``), others' only."""
    found = []
    for post in _thread_posts(answer.get("thread") if isinstance(answer, Mapping) else None):
        author = _mapping(post.get("author"))
        record = _mapping(post.get("record"))
        uri = str(post.get("uri") or "")
        if not uri or author.get("did") == own_did:
            continue
        handle = str(author.get("handle") or author.get("did") or "?")
        rkey = uri.rsplit("/", 1)[-1]
        found.append(
            Reply(
                provider_id=uri,
                author=f"@{handle}",
                text=str(record.get("text") or "")[:MAX_TEXT_CHARS],
                posted_at=_when(record.get("createdAt") or post.get("indexedAt")),
                url=f"https://bsky.app/profile/{handle}/post/{rkey}",
            )
        )
    return found
