"""A local Discord: ``POST /api/webhooks/{id}/{token}`` as Discord's Execute Webhook answers it.

Checks what Discord checks: a message with ``content`` (≤ 2000) or ``embeds`` (≤ 10), each
embed within its limits (title ≤ 256, description ≤ 4096, ≤ 25 fields of name ≤ 256 and value
≤ 1024, both non-empty, footer ≤ 2048, author ≤ 256, 6000 characters in all), answered
``400 {"code": 50035, "message": "Invalid Form Body", "errors": …}``. ``?wait=true`` answers
the message made (``id``, ``channel_id``), else ``204``. A forum webhook (``forums``) needs
``thread_name`` (a new post) or ``?thread_id=`` (an existing one; ``404 Unknown Channel`` when
gone); elsewhere ``thread_name`` is refused. A webhook marked gone answers ``404 Unknown
Webhook`` (code 10015). ``fail_next(429, retry_after_s=2)`` answers Discord's 429: JSON
``{"message", "retry_after", "global"}`` and a ``Retry-After`` header. ``GET`` on a webhook's URL
answers the webhook (a pre-flight check's read).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LIMITS = {"title": 256, "description": 4096, "footer": 2048, "author": 256, "field_name": 256, "field_value": 1024}
EMBED_TOTAL = 6000
THREAD_NAME_MAX = 100


def embed_problems(embeds: Any) -> dict[str, Any]:
    """Discord's ``errors`` object for ``embeds`` (empty when they are valid)."""
    errors: dict[str, Any] = {}
    if not isinstance(embeds, list) or len(embeds) > 10:
        return {"embeds": _error_list("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")}
    for n, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            errors[str(n)] = _error_list("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        found = _one_embed(embed)
        if found:
            errors[str(n)] = found
    return {"embeds": errors} if errors else {}


def _one_embed(embed: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    texts = {
        "title": embed.get("title", ""),
        "description": embed.get("description", ""),
        "footer": (embed.get("footer") or {}).get("text", ""),
        "author": (embed.get("author") or {}).get("name", ""),
    }
    for key, text in texts.items():
        if not isinstance(text, str) or len(text) > LIMITS[key]:
            found[key] = _error_list("BASE_TYPE_MAX_LENGTH", f"Must be {LIMITS[key]} or fewer in length.")
    fields = embed.get("fields") or []
    if len(fields) > 25:
        found["fields"] = _error_list("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    total = sum(len(str(text)) for text in texts.values())
    for i, item in enumerate(fields[:25]):
        name, value = str(item.get("name", "")), str(item.get("value", ""))
        total += len(name) + len(value)
        if not name or not value or len(name) > LIMITS["field_name"] or len(value) > LIMITS["field_value"]:
            found.setdefault("fields", {})[str(i)] = _error_list("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 1024.")
    if total > EMBED_TOTAL:
        found["_errors"] = [{"code": "MAX_EMBED_SIZE_EXCEEDED", "message": "Embed size exceeds maximum size of 6000"}]
    colour = embed.get("color", 0)
    if not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF:
        found["color"] = _error_list("NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215.")
    if "url" in embed and not str(embed["url"]).startswith(("http://", "https://")):
        found["url"] = _error_list("URL_TYPE_INVALID_URL", "Not a well formed URL.")
    return found


def _error_list(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


@dataclass
class DiscordProvider:
    """Records each message made (``messages``); any ``{id}/{token}`` is a webhook unless marked gone."""

    forums: set[str] = field(default_factory=set)  # webhook ids of forum channels
    gone: set[str] = field(default_factory=set)  # webhook ids answering 404 Unknown Webhook
    messages: list[dict[str, Any]] = field(default_factory=list)
    threads: dict[str, dict[str, Any]] = field(default_factory=dict)  # thread id -> {webhook, name}
    requests: list[dict[str, Any]] = field(default_factory=list)
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each message made
    _failures: list[float] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_310_000_000_000_000_001))

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/api/webhooks/{webhook}/{token}", self._execute, methods=["POST"]),
                Route("/api/webhooks/{webhook}/{token}", self._show, methods=["GET"]),
            ]
        )

    def fail_next(self, status: int = 429, times: int = 1, retry_after_s: float = 2.0) -> None:
        assert status == 429, "the local Discord scripts rate limits only"
        self._failures.extend([retry_after_s] * times)

    def delete_thread(self, thread_id: str) -> None:
        self.threads.pop(thread_id, None)

    async def _show(self, request: Request) -> Response:
        """Get Webhook with Token: what the webhook is (no user: a token-authenticated read)."""
        webhook = request.path_params["webhook"]
        if webhook in self.gone or not webhook.isdigit():
            return _refuse(404, 10015, "Unknown Webhook")
        kind = "forum" if webhook in self.forums else "text"
        return JSONResponse(
            {"id": webhook, "type": 1, "name": f"Status ({kind})", "channel_id": f"{webhook}0", "guild_id": "1"}
        )

    async def _execute(self, request: Request) -> Response:
        webhook = request.path_params["webhook"]
        raw = await request.body()
        self.requests.append({"path": request.url.path, "query": dict(request.query_params), "body": raw})
        if self._failures:
            wait = self._failures.pop(0)
            body = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
            return JSONResponse(body, 429, headers={"Retry-After": str(math.ceil(wait)), "X-RateLimit-Scope": "user"})
        if webhook in self.gone or not webhook.isdigit():
            return _refuse(404, 10015, "Unknown Webhook")
        try:
            body = json.loads(raw)
        except ValueError:
            return _refuse(400, 50109, "The request body contains invalid JSON.")
        if not isinstance(body, dict):
            return _refuse(400, 50035, "Invalid Form Body")
        if not body.get("content") and not body.get("embeds"):
            return _refuse(400, 50006, "Cannot send an empty message")
        if len(str(body.get("content") or "")) > 2000:
            return _refuse(400, 50035, "Invalid Form Body")
        errors = embed_problems(body.get("embeds") or [])
        if errors:
            return JSONResponse({"message": "Invalid Form Body", "code": 50035, "errors": errors}, 400)
        channel = self._channel(webhook, body, request.query_params.get("thread_id"))
        if isinstance(channel, Response):
            return channel
        message = {
            "id": str(next(self._ids)),
            "type": 0,
            "channel_id": channel,
            "webhook_id": webhook,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "thread_name": self.threads.get(channel, {}).get("name"),
        }
        self.messages.append(message)
        if self.on_accept is not None:
            self.on_accept(message)
        if request.query_params.get("wait") == "true":
            return JSONResponse(message)
        return Response(status_code=204)

    def _channel(self, webhook: str, body: dict[str, Any], thread_id: str | None) -> str | Response:
        """The channel (or thread) the message goes to, or the refusal."""
        name = body.get("thread_name")
        if webhook not in self.forums:
            if name:
                return _refuse(400, 220003, "Webhooks can only create threads in forum channels")
            return f"{webhook}0"  # the webhook's text channel
        if thread_id:
            if self.threads.get(thread_id, {}).get("webhook") != webhook:
                return _refuse(404, 10003, "Unknown Channel")
            return thread_id
        if not name:
            return _refuse(400, 220001, "Webhooks posted to forum channels must have a thread_name or thread_id")
        if len(str(name)) > THREAD_NAME_MAX:
            return _refuse(400, 50035, "Invalid Form Body")
        thread = str(next(self._ids))
        self.threads[thread] = {"webhook": webhook, "name": str(name)}
        return thread


def _refuse(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status)
