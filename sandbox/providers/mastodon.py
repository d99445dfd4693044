"""A local Mastodon: ``POST /api/v1/statuses`` as the real server answers it.

Checks the bearer token, the ``status`` field (500 graphemes, URLs counted as 23), the
visibility and the reply target; honours ``Idempotency-Key`` (same key, same status, no
new post). Tests can make it fail the next requests, stall after creating a status (so
the client times out although the post exists), or delete a status. ``GET
/api/v1/accounts/verify_credentials`` answers the token's account (a pre-flight check's read).

What people answer (the listening side): ``add_reply`` makes another account's status in reply to one of
ours (and a mention notification), which ``GET /api/v1/statuses/{id}/context`` (descendants) and ``GET
/api/v1/notifications`` (bearer token, ``types[]``, ``since_id``, ``limit``) then show; ``reads`` records
those reads, and ``fail_reads`` makes the next ones fail (a 429 with Mastodon's rate-limit headers).

    provider = MastodonProvider()
    async with serve_app(provider.app) as base_url:
        channel = MastodonChannel(base_url, provider.token)
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import zlib
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
ACCOUNT_ID = "109000000000000001"  # the token's account
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
    others: dict[str, dict[str, Any]] = field(default_factory=dict)  # statuses by other accounts
    notifications: list[dict[str, Any]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)  # context and notifications GETs, by path
    _read_failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/api/v1/statuses", self._create, methods=["POST"]),
                Route("/api/v1/statuses/{id}", self._show, methods=["GET"]),
                Route("/api/v1/statuses/{id}/context", self._context, methods=["GET"]),
                Route("/api/v1/notifications", self._notifications, methods=["GET"]),
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

    def add_reply(self, in_reply_to_id: str, text: str, acct: str = "reader@example.social") -> dict[str, Any]:
        """Another account answers status ``in_reply_to_id`` (ours or someone's), mentioning us."""
        if in_reply_to_id not in self.statuses and in_reply_to_id not in self.others:
            raise KeyError(f"no status {in_reply_to_id}")
        status_id = str(next(self._ids))
        mention = f'<span class="h-card"><a href="https://social.example/@{self.username}">@{self.username}</a></span>'
        status = {
            "id": status_id,
            "created_at": _now(),
            "in_reply_to_id": in_reply_to_id,
            "visibility": "public",
            "content": f"<p>{mention} {html.escape(text)}</p>",
            "url": f"https://social.example/@{acct.split('@')[0]}/{status_id}",
            "account": {"id": str(zlib.crc32(acct.encode()) + 2), "username": acct.split("@")[0], "acct": acct},
        }
        self.others[status_id] = status
        notification_id = str(len(self.notifications) + 1)
        self.notifications.append(
            {
                "id": notification_id,
                "type": "mention",
                "created_at": status["created_at"],
                "account": status["account"],
                "status": status,
            }
        )
        return status

    def fail_reads(self, status: int = 429, times: int = 1, reset_in_s: float = 60.0) -> None:
        """Answer the next ``times`` context or notification reads with ``status`` (429: with a reset time)."""
        reset = (datetime.now(UTC) + timedelta(seconds=reset_in_s)).isoformat().replace("+00:00", "Z")
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
        self._read_failures.extend([(status, headers if status == 429 else {})] * times)

    def _account(self) -> dict[str, Any]:
        return {"id": ACCOUNT_ID, "username": self.username, "acct": self.username}

    def _read_refused(self, request: Request, needs_token: bool) -> Response | None:
        self.reads.append(request.url.path)
        if needs_token and request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "The access token is invalid")
        if self._read_failures:
            status, headers = self._read_failures.pop(0)
            return _error(status, "Too many requests" if status == 429 else "Internal error", headers)
        return None

    async def _context(self, request: Request) -> Response:
        refused = self._read_refused(request, needs_token=False)  # a public status's context is public
        if refused is not None:
            return refused
        root = request.path_params["id"]
        everything = {**self.statuses, **self.others}
        if root not in everything or root in self.deleted:
            return _error(404, "Record not found")
        below, frontier = [], {root}
        while frontier:
            children = [
                s for s in everything.values() if s.get("in_reply_to_id") in frontier and s["id"] not in self.deleted
            ]
            below.extend(children)
            frontier = {s["id"] for s in children}
        return JSONResponse({"ancestors": [], "descendants": sorted(below, key=lambda s: int(s["id"]))})

    async def _notifications(self, request: Request) -> Response:
        refused = self._read_refused(request, needs_token=True)
        if refused is not None:
            return refused
        types = request.query_params.getlist("types[]")
        since = int(request.query_params.get("since_id") or 0)
        limit = min(80, int(request.query_params.get("limit") or 40))
        found = [n for n in reversed(self.notifications) if (not types or n["type"] in types) and int(n["id"]) > since]
        return JSONResponse(found[:limit])

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
            "account": self._account(),
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
                "id": ACCOUNT_ID,
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


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
