"""A local X API v2: ``POST /2/tweets`` and ``DELETE /2/tweets/{id}``, answered as X does.

Checks the bearer token, the JSON body, the weighted 280 limit (twitter-text v3 rules:
code points in U+0000-U+10FF and three punctuation ranges weigh 1, others 2, an emoji
sequence 2, a URL 23), refuses duplicate text and replies to deleted posts with X's own
403s. Tests can make it fail the next requests, stall after posting, or delete a post.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grapheme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_WEIGHTED_LENGTH = 280
_URL = re.compile(r"https?://\S+")
_ONE = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


def weighted_length(text: str) -> int:
    """An independent, simpler reading of twitter-text v3 (scheme URLs only)."""
    text = _URL.sub("\x00" * 23, unicodedata.normalize("NFC", text))
    total = 0
    for cluster in grapheme.graphemes(text):
        if len(cluster) > 1 and any(ord(c) >= 0x1F000 or c in "\u200d\ufe0f\u20e3" for c in cluster):
            total += 2  # one emoji: ZWJ, variation selector, keycap, flag or skin-tone sequence
        else:
            total += sum(1 if any(lo <= ord(c) <= hi for lo, hi in _ONE) else 2 for c in cluster)
    return total


@dataclass
class XProvider:
    token: str = "x-user-token"
    tweets: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    stall_s: float = 1.0
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each new post
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_860_000_000_000_000_001))
    _failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _stalls: int = 0

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/2/tweets", self._create, methods=["POST"]),
                Route("/2/tweets/{id}", self._delete, methods=["DELETE"]),
            ]
        )

    @property
    def posts(self) -> list[dict[str, Any]]:
        return sorted(self.tweets.values(), key=lambda t: int(t["id"]))

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        if status == 429 and headers is None:
            headers = {
                "x-rate-limit-limit": "100",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(time.time()) + 60),
            }
        self._failures.extend([(status, headers or {})] * times)

    def stall_next(self, times: int = 1) -> None:
        self._stalls += times

    def delete(self, tweet_id: str) -> None:
        self.deleted.add(tweet_id)

    async def _create(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _problem(401, "Unauthorized", "Unauthorized")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _invalid("Request body is not valid JSON")
        self.requests.append(body)
        if self._failures:
            status, headers = self._failures.pop(0)
            title = "Too Many Requests" if status == 429 else "Service Unavailable"
            return _problem(status, title, title, headers)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return _invalid("$.text: is missing but it is required")
        if weighted_length(text) > MAX_WEIGHTED_LENGTH:
            return _invalid("Your Tweet text is too long. (weighted length over 280)")
        reply_to = None
        if "reply" in body:
            reply_to = (body["reply"] or {}).get("in_reply_to_tweet_id")
            if not isinstance(reply_to, str) or not reply_to.isdigit():
                return _invalid("$.reply.in_reply_to_tweet_id: is missing but it is required")
            if reply_to not in self.tweets or reply_to in self.deleted:
                detail = "You attempted to reply to a Tweet that is deleted or not visible to you."
                return _problem(403, "Forbidden", detail)
        if any(t["text"] == text and t["id"] not in self.deleted for t in self.tweets.values()):
            return _problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
        tweet_id = str(next(self._ids))
        self.tweets[tweet_id] = {"id": tweet_id, "text": text, "in_reply_to_tweet_id": reply_to}
        if self.on_accept is not None:
            self.on_accept(self.tweets[tweet_id])
        if self._stalls:
            self._stalls -= 1
            await asyncio.sleep(self.stall_s)
        data = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        return JSONResponse({"data": data}, status_code=201)

    async def _delete(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _problem(401, "Unauthorized", "Unauthorized")
        self.delete(request.path_params["id"])
        return JSONResponse({"data": {"deleted": True}})


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"title": title, "detail": detail, "type": "about:blank", "status": status}
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid(message: str) -> JSONResponse:
    body = {
        "errors": [{"message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    return JSONResponse(body, status_code=400)
