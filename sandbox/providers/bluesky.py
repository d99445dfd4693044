"""A local Bluesky PDS: the XRPC calls a poster makes, answered as a PDS does.

- ``com.atproto.server.createSession`` {identifier, password} -> accessJwt, refreshJwt, did; rate
  limited per account as Bluesky does (30 in 5 minutes: then 429 ``RateLimitExceeded`` with
  ``ratelimit-*`` headers), failed sign-ins included
- ``com.atproto.server.refreshSession`` (bearer refreshJwt) -> a new pair; the old refresh JWT is spent
- ``com.atproto.server.getSession`` (bearer accessJwt) -> {handle, did, active}
- ``com.atproto.repo.createRecord`` (bearer accessJwt) -> {uri, cid}; checks the repo and the
  ``app.bsky.feed.post`` record (300 graphemes, 3000 bytes, facets inside the text's bytes,
  reply refs well formed). Like a real PDS it does *not* check that a reply's parent exists.
- ``com.atproto.repo.getRecord`` -> {uri, cid, value} or 400 ``RecordNotFound``
- ``app.bsky.feed.getPostThread`` (bearer accessJwt, as the PDS proxies it to the AppView) -> {thread}: the
  post and its replies (``threadViewPost``s, ``depth`` levels), or 400 ``NotFound``; ``add_reply`` makes
  another account's reply to a post, ``fail_reads`` makes the next reads fail (429 with ``ratelimit-*``)

Access JWTs carry an ``exp`` claim (``access_lifetime_s`` after issue) and answer
``ExpiredToken`` after it. Errors are XRPC's ``{"error": Name, "message": ...}``. Tests can
expire access tokens, make the next createRecord calls fail or stall, and delete posts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grapheme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

POST = "app.bsky.feed.post"
MAX_GRAPHEMES = 300
MAX_BYTES = 3000
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def make_cid(data: bytes) -> str:
    """A CIDv1 (dag-cbor, sha2-256) in base32, the shape a PDS returns."""
    raw = bytes([0x01, 0x71, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def make_tid(clock_id: int = 0) -> str:
    """A record key as PDSes mint them: 53 bits of microseconds + 10 bits of clock id."""
    value = (time.time_ns() // 1000) << 10 | (clock_id & 0x3FF)
    return "".join(_TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


@dataclass
class BlueskyProvider:
    handle: str = "status.example.com"
    password: str = "app-pass-word-1234"
    did: str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # rkey -> {uri, cid, value}
    requests: list[dict[str, Any]] = field(default_factory=list)  # createRecord bodies
    deleted: set[str] = field(default_factory=set)  # uris
    calls: list[str] = field(default_factory=list)  # every XRPC method called, in order
    stall_s: float = 1.0
    access_lifetime_s: float = 7200.0  # a PDS's access JWT lasts two hours
    session_limit: int = 30  # createSession calls per account in session_window_s
    session_window_s: float = 300.0
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each new {uri, cid, value}
    _access: dict[str, float] = field(default_factory=dict)  # access JWT -> its exp (epoch seconds)
    _expired: set[str] = field(default_factory=set)
    _refresh: set[str] = field(default_factory=set)
    _failures: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    _stalls: int = 0
    _clock: int = 0
    _sign_ins: list[float] = field(default_factory=list)  # when createSession was called (monotonic)
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)  # uri -> others' {uri, cid, author, record}
    _read_failures: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/xrpc/com.atproto.server.createSession", self._create_session, methods=["POST"]),
                Route("/xrpc/com.atproto.server.refreshSession", self._refresh_session, methods=["POST"]),
                Route("/xrpc/com.atproto.server.getSession", self._get_session, methods=["GET"]),
                Route("/xrpc/com.atproto.repo.createRecord", self._create_record, methods=["POST"]),
                Route("/xrpc/com.atproto.repo.getRecord", self._get_record, methods=["GET"]),
                Route("/xrpc/app.bsky.feed.getPostThread", self._get_post_thread, methods=["GET"]),
            ]
        )

    @property
    def posts(self) -> list[dict[str, Any]]:
        """Posts made, oldest first: {uri, cid, value}."""
        return list(self.records.values())

    @property
    def create_session_calls(self) -> int:
        """How many times anyone signed in with the password (what Bluesky rate-limits)."""
        return self.calls.count("createSession")

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers ``ExpiredToken``."""
        self._expired |= set(self._access)
        self._access.clear()

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far now answers ``ExpiredToken``."""
        self._refresh.clear()

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` createRecord calls with ``status`` (500, 429...)."""
        if status == 429 and headers is None:
            headers = {
                "ratelimit-limit": "5000",
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(int(time.time()) + 60),
                "ratelimit-policy": "5000;w=3600",
            }
        error = "RateLimitExceeded" if status == 429 else "InternalServerError"
        self._failures.extend([(status, error, headers or {})] * times)

    def stall_next(self, times: int = 1) -> None:
        """Create the next ``times`` records, then answer only after ``stall_s`` seconds."""
        self._stalls += times

    def delete(self, uri: str) -> None:
        self.deleted.add(uri)

    def add_reply(self, parent_uri: str, text: str, handle: str = "reader.example.com") -> str:
        """Another account replies to ``parent_uri`` (ours or a reply); returns the reply's uri."""
        parent = self._post(parent_uri)
        if parent is None:
            raise KeyError(f"no post {parent_uri}")
        parent_ref = {"uri": parent["uri"], "cid": parent["cid"]}
        root_ref = (parent["value"].get("reply") or {}).get("root") or parent_ref
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        self._clock += 1
        uri = f"at://{did}/{POST}/{make_tid(self._clock)}"
        record = {
            "$type": POST,
            "text": text,
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "reply": {"root": root_ref, "parent": parent_ref},
        }
        cid = make_cid(json.dumps(record, sort_keys=True).encode())
        self.replies[uri] = {"uri": uri, "cid": cid, "value": record, "author": {"did": did, "handle": handle}}
        return uri

    def fail_reads(self, status: int = 429, times: int = 1, reset_in_s: float = 60.0) -> None:
        """Answer the next ``times`` getPostThread calls with ``status`` (429: with a reset time)."""
        headers = {
            "ratelimit-limit": "3000",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(int(time.time() + reset_in_s)),
        }
        error = "RateLimitExceeded" if status == 429 else "InternalServerError"
        self._read_failures.extend([(status, error, headers if status == 429 else {})] * times)

    def _post(self, uri: str) -> dict[str, Any] | None:
        if uri in self.deleted:
            return None
        ours = next((r for r in self.records.values() if r["uri"] == uri), None)
        if ours is not None:
            return {**ours, "author": {"did": self.did, "handle": self.handle}}
        return self.replies.get(uri)

    def _view(self, post: dict[str, Any], depth: int) -> dict[str, Any]:
        children = [
            r
            for r in [*self.records.values(), *self.replies.values()]
            if (r["value"].get("reply") or {}).get("parent", {}).get("uri") == post["uri"]
            and r["uri"] not in self.deleted
        ]
        views = [self._view(self._post(r["uri"]) or r, depth - 1) for r in children] if depth > 0 else []
        return {
            "$type": "app.bsky.feed.defs#threadViewPost",
            "post": {
                "uri": post["uri"],
                "cid": post["cid"],
                "author": {**post["author"], "displayName": post["author"]["handle"]},
                "record": post["value"],
                "replyCount": len(children),
                "indexedAt": post["value"].get("createdAt"),
            },
            "replies": views,
        }

    async def _get_post_thread(self, request: Request) -> Response:
        self.calls.append("getPostThread")
        refused = self._access_error(request)
        if refused is not None:
            return refused
        if self._read_failures:
            status, error, headers = self._read_failures.pop(0)
            return _error(status, error, "Rate Limit Exceeded" if status == 429 else "Internal Server Error", headers)
        uri = request.query_params.get("uri", "")
        post = self._post(uri)
        if post is None:
            return _error(400, "NotFound", f"Post not found: {uri}")
        depth = max(0, min(1000, int(request.query_params.get("depth") or 6)))
        return JSONResponse({"thread": self._view(post, depth)})

    def _issue(self) -> dict[str, Any]:
        now = time.time()
        exp = now + self.access_lifetime_s
        access = _jwt({"scope": "com.atproto.appPass", "sub": self.did, "iat": int(now), "exp": exp})
        refresh = _jwt({"scope": "com.atproto.refresh", "sub": self.did, "jti": secrets.token_hex(8)})
        self._access[access] = exp
        self._refresh.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "handle": self.handle, "did": self.did, "active": True}

    def _access_error(self, request: Request) -> Response | None:
        """Why the request's access JWT is refused, or None."""
        token = _bearer(request)
        if token in self._expired or (token in self._access and time.time() >= self._access[token]):
            return _error(400, "ExpiredToken", "Token has expired")
        if token not in self._access:
            return _error(401, "AuthenticationRequired", "Authentication Required")
        return None

    def _sign_in_limited(self) -> Response | None:
        """Bluesky's per-account createSession limit: 429 once ``session_limit`` calls fill the window."""
        now = time.monotonic()
        self._sign_ins[:] = [t for t in self._sign_ins if now - t < self.session_window_s]
        if len(self._sign_ins) >= self.session_limit:
            reset = time.time() + self.session_window_s - (now - self._sign_ins[0])
            headers = {
                "ratelimit-limit": str(self.session_limit),
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(int(reset) + 1),
                "ratelimit-policy": f"{self.session_limit};w={int(self.session_window_s)}",
            }
            return _error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)
        self._sign_ins.append(now)
        return None

    async def _create_session(self, request: Request) -> Response:
        self.calls.append("createSession")
        limited = self._sign_in_limited()
        if limited is not None:
            return limited
        body = await _json(request)
        if not isinstance(body, dict) or not body.get("identifier") or not body.get("password"):
            return _error(400, "InvalidRequest", "Input must have the properties identifier and password")
        if body["identifier"] not in (self.handle, self.did) or body["password"] != self.password:
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        return JSONResponse(self._issue())

    async def _refresh_session(self, request: Request) -> Response:
        self.calls.append("refreshSession")
        token = _bearer(request)
        if token not in self._refresh:
            return _error(400, "ExpiredToken", "Token has been revoked")
        self._refresh.discard(token)
        return JSONResponse(self._issue())

    async def _get_session(self, request: Request) -> Response:
        self.calls.append("getSession")
        refused = self._access_error(request)
        if refused is not None:
            return refused
        return JSONResponse({"handle": self.handle, "did": self.did, "active": True})

    async def _create_record(self, request: Request) -> Response:
        self.calls.append("createRecord")
        refused = self._access_error(request)
        if refused is not None:
            return refused
        body = await _json(request)
        self.requests.append(body)
        if self._failures:
            status, error, headers = self._failures.pop(0)
            return _error(status, error, "Rate Limit Exceeded" if status == 429 else "Internal Server Error", headers)
        if not isinstance(body, dict) or body.get("repo") not in (self.did, self.handle):
            return _error(400, "InvalidRequest", "Invalid repo")
        if body.get("collection") != POST:
            return _error(400, "InvalidRequest", f"Unsupported collection: {body.get('collection')}")
        problem = _invalid_post(body.get("record"))
        if problem:
            return _error(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {problem}")
        self._clock += 1
        rkey = make_tid(self._clock)
        uri = f"at://{self.did}/{POST}/{rkey}"
        cid = make_cid(json.dumps(body["record"], sort_keys=True).encode())
        self.records[rkey] = {"uri": uri, "cid": cid, "value": body["record"]}
        if self.on_accept is not None:
            self.on_accept(self.records[rkey])
        if self._stalls:
            self._stalls -= 1
            await asyncio.sleep(self.stall_s)
        commit = {"cid": make_cid(rkey.encode()), "rev": make_tid()}
        return JSONResponse({"uri": uri, "cid": cid, "commit": commit, "validationStatus": "valid"})

    async def _get_record(self, request: Request) -> Response:
        self.calls.append("getRecord")
        params = request.query_params
        record = self.records.get(params.get("rkey", ""))
        if (
            params.get("repo") not in (self.did, self.handle)
            or params.get("collection") != POST
            or record is None
            or record["uri"] in self.deleted
        ):
            uri = f"at://{params.get('repo')}/{params.get('collection')}/{params.get('rkey')}"
            return _error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return JSONResponse(record)


def _invalid_post(record: Any) -> str | None:
    """Why ``record`` is not a valid ``app.bsky.feed.post``, or None."""
    if not isinstance(record, dict) or record.get("$type") != POST:
        return "Record/$type must be app.bsky.feed.post"
    text = record.get("text")
    if not isinstance(text, str):
        return 'Record must have the property "text"'
    if grapheme.length(text) > MAX_GRAPHEMES:
        return f"Record/text must not be longer than {MAX_GRAPHEMES} graphemes"
    if len(text.encode()) > MAX_BYTES:
        return f"Record/text must not be longer than {MAX_BYTES} characters"
    try:
        datetime.fromisoformat(str(record.get("createdAt")))
    except ValueError:
        return "Record/createdAt must be an valid atproto datetime"
    size = len(text.encode())
    for facet in record.get("facets") or []:
        index = facet.get("index") or {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
            return "Record/facets/index must lie within the text"
        if not facet.get("features"):
            return "Record/facets/features must not be empty"
    reply = record.get("reply")
    if reply is not None:
        for part in ("root", "parent"):
            ref = reply.get(part) if isinstance(reply, dict) else None
            if not (isinstance(ref, dict) and str(ref.get("uri", "")).startswith("at://") and ref.get("cid")):
                return f"Record/reply/{part} must be a strong ref (uri, cid)"
    return None


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped token (the claims readable, the signature random): what a client may decode."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ")


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)
