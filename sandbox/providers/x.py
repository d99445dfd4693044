"""A local X API v2: ``POST /2/tweets``, ``DELETE /2/tweets/{id}``, ``GET /2/users/me``, as X answers.

Signs callers in as X does, three ways: a static bearer token (``token``); OAuth 2.0 access
tokens it issued at ``POST /2/oauth2/token`` (``grant_type=refresh_token``), each living
``expires_in`` seconds, the refresh token rotated on every refresh and a spent one refused
(400 ``invalid_request``), every refresh counted in ``refresh_calls``; OAuth 1.0a user context,
the HMAC-SHA1 signature verified by oauthlib (``sandbox.providers.x_oauth1``).

Then it checks the JSON body, the weighted 280 limit (twitter-text v3 rules: code points in
U+0000-U+10FF and three punctuation ranges weigh 1, others 2, an emoji sequence 2, a URL 23),
refuses duplicate text and replies to deleted posts with X's own 403s. Tests can make it fail
the next requests, stall after posting, or delete a post.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import secrets
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

from sandbox.providers.x_oauth1 import OAuth1Verifier

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
    token: str = "x-user-token"  # a static OAuth 2.0 user token
    # OAuth 2.0 with refresh: a public client unless client_secret is set (then HTTP Basic is required)
    client_id: str = "x-client-id"
    client_secret: str | None = None
    refresh_token: str = "x-refresh-token-0"  # the one the consent flow gave the operator
    expires_in: float = 7200.0
    refresh_calls: int = 0  # every call to /2/oauth2/token, refused ones included
    # OAuth 1.0a user context
    consumer_key: str = "x-consumer-key"
    consumer_secret: str = "x-consumer-secret"
    access_token: str = "1860000000000000000-x-access-token"
    access_token_secret: str = "x-access-token-secret"
    username: str = "status"
    signed_in_as: list[str] = field(default_factory=list)  # per accepted post: "oauth1" or the bearer token
    refused: int = 0  # posts answered 401
    tweets: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    stall_s: float = 1.0
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each new post
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_860_000_000_000_000_001))
    _failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _stalls: int = 0
    _issued: dict[str, float] = field(default_factory=dict)  # OAuth 2.0 access token -> expiry (epoch s)
    _refresh_tokens: set[str] = field(default_factory=set)  # the refresh tokens not yet spent

    def __post_init__(self) -> None:
        self._refresh_tokens.add(self.refresh_token)
        self._oauth1 = OAuth1Verifier(self)
        self.app = Starlette(
            routes=[
                Route("/2/tweets", self._create, methods=["POST"]),
                Route("/2/tweets/{id}", self._delete, methods=["DELETE"]),
                Route("/2/users/me", self._me, methods=["GET"]),
                Route("/2/oauth2/token", self._token, methods=["POST"]),
            ]
        )

    def expire_access_tokens(self) -> None:
        """Every OAuth 2.0 access token issued so far is refused from now on."""
        self._issued.clear()

    async def _caller(self, request: Request) -> str | None:
        """Who signed the request: "oauth1", the bearer token, or None (then X answers 401)."""
        header = request.headers.get("authorization", "")
        if header.startswith("OAuth "):
            return "oauth1" if await self._oauth1.verify(request) else None
        token = header.removeprefix("Bearer ")
        if token == self.token or self._issued.get(token, 0.0) > time.time():
            return token
        return None

    async def _token(self, request: Request) -> Response:
        self.refresh_calls += 1
        form = await request.form()
        client_id = str(form.get("client_id") or "")
        if self.client_secret is not None:
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return _oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        elif client_id != self.client_id:
            return _oauth_error(400, "invalid_request", "Missing required parameter [client_id].")
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant type")
        refresh = str(form.get("refresh_token") or "")
        if refresh not in self._refresh_tokens:  # spent (rotated away) or never issued
            return _oauth_error(400, "invalid_request", "Value passed for the token was invalid.")
        self._refresh_tokens.discard(refresh)
        access, rotated = f"x-access-{secrets.token_hex(12)}", f"x-refresh-{secrets.token_hex(12)}"
        self._issued[access] = time.time() + self.expires_in
        self._refresh_tokens.add(rotated)
        body = {
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "access_token": access,
            "scope": "tweet.write users.read tweet.read offline.access",
            "refresh_token": rotated,
        }
        return JSONResponse(body)

    async def _me(self, request: Request) -> Response:
        if await self._caller(request) is None:
            return _problem(401, "Unauthorized", "Unauthorized")
        return JSONResponse({"data": {"id": "1860000000000000000", "name": "Status", "username": self.username}})

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
        caller = await self._caller(request)
        if caller is None:
            self.refused += 1
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
        self.signed_in_as.append(caller)
        if self.on_accept is not None:
            self.on_accept(self.tweets[tweet_id])
        if self._stalls:
            self._stalls -= 1
            await asyncio.sleep(self.stall_s)
        data = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        return JSONResponse({"data": data}, status_code=201)

    async def _delete(self, request: Request) -> Response:
        if await self._caller(request) is None:
            return _problem(401, "Unauthorized", "Unauthorized")
        self.delete(request.path_params["id"])
        return JSONResponse({"data": {"deleted": True}})


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"title": title, "detail": detail, "type": "about:blank", "status": status}
    return JSONResponse(body, status_code=status, headers=headers)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _invalid(message: str) -> JSONResponse:
    body = {
        "errors": [{"message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    return JSONResponse(body, status_code=400)
