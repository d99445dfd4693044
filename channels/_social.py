"""What the social channels (Mastodon, Bluesky, X) share; not a channel.

Each posts one short text per update, measured the way its platform counts, and threads the
incident's later updates as replies to its previous post. When that post is gone (deleted or
hidden since), the update starts a new thread rather than failing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from channels.base import Message, Rendition, ReplyTargetGone, Thread, render_template, short_text

URL = re.compile(r"https?://[^\s<>\"]+?(?=[.,;:!?)\]'\"]*(?:\s|$))")
"""An http(s) URL without the punctuation that ends the sentence around it."""

ERROR_TEXT_MAX_CHARS = 200

P = TypeVar("P")
T = TypeVar("T")


def render_post(
    message: Message,
    platform: str,
    limit: int,
    measure: Callable[[str], int],
    *,
    fit: Callable[[str], int] | None = None,
    link_cost: int | None = None,
) -> Rendition:
    """The post: ``social/post.txt`` when it fits in ``limit``, else the deterministic short form.

    ``measure`` is the platform's length (shown as ``length``); ``fit`` (default ``measure``) is
    the stricter one the text must keep within ``limit``; ``link_cost`` is what a URL counts.
    ``reply_to`` is null here because only ``publish`` sees the thread.
    """
    fit = fit or measure
    short = short_text(message, limit, fit, link_cost=link_cost)
    text = render_template("social/post.txt", text=short, message=message, platform=platform).strip()
    if fit(text) > limit or not text.endswith(message.public_url):
        text = short
    return {"text": text, "length": measure(text), "limit": limit, "reply_to": None}


async def reply_or_start(post: Callable[[P | None], Awaitable[T]], parent: P | None) -> tuple[T, bool]:
    """``post(parent)``, a reply, or ``post(None)``, a new thread, when there is no parent or it is gone.

    Returns what ``post`` returned and whether it is a reply. ``post`` raises ``ReplyTargetGone``
    when the provider refuses the reply because its parent no longer exists.
    """
    if parent:
        try:
            return await post(parent), True
        except ReplyTargetGone:
            pass
    return await post(None), False


def last_post_id(thread: Thread) -> str | None:
    """The post a follow-up replies to, from the thread state ``{"root_id", "last_id"}``."""
    value = thread.get("last_id")
    return str(value) if value else None


def next_thread(thread: Thread, post_id: str, replied: bool) -> Thread:
    """The thread state after ``post_id``: rooted at the thread's first post, or at itself when it starts one."""
    root = str(thread.get("root_id") or thread.get("last_id")) if replied else post_id
    return {"root_id": root, "last_id": post_id}


def error_text(response: httpx.Response, read: Callable[[dict[str, Any]], str]) -> str:
    """The provider's own words for an error answer: ``read`` of its JSON object, else the text it sent."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:ERROR_TEXT_MAX_CHARS] or response.reason_phrase
    if not isinstance(body, dict):
        return response.reason_phrase
    return read(body) or response.reason_phrase
