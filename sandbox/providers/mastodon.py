"""A local Mastodon: ``POST /api/v1/statuses`` as the real server answers it.

Checks the bearer token, the ``status`` field (500 graphemes, URLs counted as 23), the
visibility and the reply target; honours ``Idempotency-Key`` (same key, same status, no
new post). Tests can make it fail the next requests, stall after creating a status (so
the client times out although the post exists), or delete a status. ``GET
/api/v1/accounts/verify_credentials`` answers the token's account (a pre-flight check's read).

    provider = MastodonProvider()
    async with serve_app(provider.app) as base_url:
        channel = MastodonChannel(base_url, provider.token)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grapheme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_CHARS = 500
_URL = re.compile(r"https?://[^\s<>\"]+?(?=[.,;:!?)\]'\"]*(?:\s|$))")


def countable_length(text: str) -> int:
    """Mastodon's ``StatusLengthValidator``: graphemes, every URL as 23 characters."""
    return int(grapheme.length(_URL.sub("x" * 23, text)))


@dataclass
class MastodonProvider:
    token: str = "mastodon-token"
    username: str = "status"
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)  # every POST, as received
    deleted: set[str] = field(default_factory=set)
    stall_s: float = 1.0
    credential_checks: int = 0  # GET /api/v1/accounts/verify_credentials, answered or not
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each new status
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(109_000_000_000_000_001))
    _idempotency: dict[str, str] = field(default_factory=dict)
    _failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _stalls: int = 0

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/api/v1/statuses", self._create, methods=["POST"]),
                Route("/api/v1/statuses/{id}", self._show, methods=["GET"]),
                Route("/api/v1/statuses/{id}", self._delete, methods=["DELETE"]),
                Route("/api/v1/accounts/verify_credentials", self._verify_credentials, methods=["GET"]),
            ]
        )

    @property
    def posts(self) -> list[dict[str, Any]]:
        """Statuses made, oldest first (deleted ones included)."""
        return sorted(self.statuses.values(), key=lambda s: int(s["id"]))

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` POSTs with ``status`` (e.g. 500, 429) and post nothing."""
        if status == 429 and headers is None:
            reset = (datetime.now(UTC) + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
            headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
        self._failures.extend([(status, headers or {})] * times)

    def stall_next(self, times: int = 1) -> None:
        """Create the next ``times`` statuses, then answer only after ``stall_s`` seconds."""
        self._stalls += times

    def delete(self, status_id: str) -> None:
        self.deleted.add(status_id)

    async def _create(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "The access token is invalid")
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                params = json.loads(await request.body())
            except ValueError:
                return _error(400, "Invalid JSON")
        else:
            params = dict(await request.form())
        key = request.headers.get("idempotency-key")
        self.requests.append({"params": params, "idempotency_key": key})
        if self._failures:
            status, headers = self._failures.pop(0)
            return _error(status, "Too many requests" if status == 429 else "Internal error", headers)
        if key and key in self._idempotency:
            return JSONResponse(self.statuses[self._idempotency[key]])
        text = params.get("status")
        if not isinstance(text, str) or not text.strip():
            return _error(422, "Validation failed: Text can't be blank")
        if countable_length(text) > MAX_CHARS:
            return _error(422, f"Validation failed: Text character limit of {MAX_CHARS} exceeded")
        visibility = params.get("visibility", "public")
        if visibility not in ("public", "unlisted", "private", "direct"):
            return _error(422, "Validation failed: Visibility is not included in the list")
        reply_to = params.get("in_reply_to_id")
        if reply_to and (reply_to not in self.statuses or reply_to in self.deleted):
            return _error(404, "The post you are trying to reply to does not appear to exist.")
        status_id = str(next(self._ids))
        self.statuses[status_id] = {
            "id": status_id,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "in_reply_to_id": reply_to or None,
            "visibility": visibility,
            "content": f"<p>{text}</p>",
            "text": text,  # what Mastodon keeps as the source; exposed here for tests
            "url": f"{request.base_url}@{self.username}/{status_id}",
            "uri": f"{request.base_url}users/{self.username}/statuses/{status_id}",
        }
        if key:
            self._idempotency[key] = status_id
        if self.on_accept is not None:
            self.on_accept(self.statuses[status_id])
        if self._stalls:
            self._stalls -= 1
            await asyncio.sleep(self.stall_s)
        return JSONResponse(self.statuses[status_id])

    async def _verify_credentials(self, request: Request) -> Response:
        self.credential_checks += 1
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "The access token is invalid")
        return JSONResponse(
            {
                "id": "109000000000000001",
                "username": self.username,
                "acct": self.username,  # a local account: no @domain
                "display_name": "Status",
                "locked": False,
                "bot": True,
                "created_at": "2024-01-15T00:00:00.000Z",
                "url": f"{request.base_url}@{self.username}",
                "statuses_count": len(self.statuses),
                "source": {"privacy": "public", "sensitive": False, "language": "en", "note": ""},
            }
        )

    async def _show(self, request: Request) -> Response:
        status_id = request.path_params["id"]
        if status_id not in self.statuses or status_id in self.deleted:
            return _error(404, "Record not found")
        return JSONResponse(self.statuses[status_id])

    async def _delete(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "The access token is invalid")
        status_id = request.path_params["id"]
        if status_id not in self.statuses or status_id in self.deleted:
            return _error(404, "Record not found")
        self.delete(status_id)
        return JSONResponse(self.statuses[status_id])


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
