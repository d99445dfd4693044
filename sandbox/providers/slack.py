"""A local Slack: incoming webhooks and the Web API methods a bot posts with, as Slack answers them.

- ``POST /services/{team}/{bot}/{secret}`` (an incoming webhook): JSON ``{text?, blocks?, …}``;
  answers ``200 ok``, or an error word as the body: ``400 invalid_payload``, ``no_text``,
  ``invalid_blocks``; ``404 no_service`` for a webhook marked gone; ``410 channel_is_archived``.
- ``POST /api/chat.postMessage``, ``/api/chat.update``, ``/api/auth.test`` with
  ``Authorization: Bearer <bot token>``: ``200 {"ok": true, …}`` or ``200 {"ok": false, "error": …}``
  (``invalid_auth``, ``channel_not_found``, ``message_not_found``, ``invalid_blocks``, ``msg_too_long``).

Blocks are checked as Slack checks them: at most 50, a known type each, a header's
``plain_text`` ≤ 150, a section's text ≤ 3000, ≤ 10 context elements, a button's text ≤ 75
and URL ≤ 3000, no unknown keys. ``fail_next(429, retry_after_s=2)`` answers the next requests
``429`` with ``Retry-After``; ``min_interval_s`` (off by default) refuses a second post to one
channel within that time with a 429, as Slack's one message a second per channel.

    slack = SlackProvider()
    async with serve_app(slack.app) as base_url: ...  # bot: f"{base_url}/api"; hooks: f"{base_url}/services/…"
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

MAX_BLOCKS = 50
TEXT_MAX = 40_000
_TEXT_OBJECT = {"type", "text", "emoji", "verbatim"}
_BLOCK_KEYS = {
    "header": {"type", "text", "block_id"},
    "section": {"type", "text", "fields", "accessory", "block_id"},
    "context": {"type", "elements", "block_id"},
    "actions": {"type", "elements", "block_id"},
    "divider": {"type", "block_id"},
    "image": {"type", "image_url", "alt_text", "title", "block_id"},
}
_BUTTON_KEYS = {"type", "text", "url", "action_id", "value", "style"}


def _text_problem(obj: Any, where: str, limit: int, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")) -> str | None:
    if not isinstance(obj, dict) or obj.get("type") not in kinds or set(obj) - _TEXT_OBJECT:
        return f"{where}: must be a text object of type {' or '.join(kinds)}"
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return f"{where}: text must be a non-empty string"
    if len(text) > limit:
        return f"{where}: must be less than {limit + 1} characters"
    return None


def block_problem(blocks: Any) -> str | None:
    """Why Slack would answer ``invalid_blocks`` to ``blocks``, or ``None``."""
    if not isinstance(blocks, list) or not blocks:
        return "blocks: must be a non-empty array"
    if len(blocks) > MAX_BLOCKS:
        return f"blocks: must contain at most {MAX_BLOCKS} items"
    for n, block in enumerate(blocks):
        where = f"blocks[{n}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _BLOCK_KEYS:
            return f"{where}: unsupported type {kind!r}"
        if set(block) - _BLOCK_KEYS[kind]:
            return f"{where}: unknown properties {sorted(set(block) - _BLOCK_KEYS[kind])}"
        problem = _one_block(block, kind, where)
        if problem:
            return problem
    return None


def _one_block(block: dict[str, Any], kind: str, where: str) -> str | None:
    if kind == "header":
        return _text_problem(block.get("text"), f"{where}.text", 150, ("plain_text",))
    if kind == "section":
        if "text" not in block and "fields" not in block:
            return f"{where}: must have text or fields"
        if "text" in block:
            return _text_problem(block["text"], f"{where}.text", 3000)
        return None
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            return f"{where}.elements: must have between 1 and 10 items"
        for i, element in enumerate(elements):
            problem = _text_problem(element, f"{where}.elements[{i}]", 3000)
            if problem:
                return problem
        return None
    if kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            return f"{where}.elements: must have between 1 and 25 items"
        for i, button in enumerate(elements):
            at = f"{where}.elements[{i}]"
            if not isinstance(button, dict) or button.get("type") != "button" or set(button) - _BUTTON_KEYS:
                return f"{at}: must be a button"
            problem = _text_problem(button.get("text"), f"{at}.text", 75, ("plain_text",))
            if problem:
                return problem
            url = button.get("url", "")
            if not isinstance(url, str) or len(url) > 3000 or not url.startswith(("http://", "https://")):
                return f"{at}.url: must be an http(s) URL of at most 3000 characters"
            if len(str(button.get("action_id", ""))) > 255:
                return f"{at}.action_id: must be at most 255 characters"
    return None


def message_problem(body: dict[str, Any]) -> str | None:
    """The error word Slack answers for a message body, or ``None`` when it posts."""
    text, blocks = body.get("text"), body.get("blocks")
    if not text and not blocks:
        return "no_text"
    if text is not None and (not isinstance(text, str) or len(text) > TEXT_MAX):
        return "msg_too_long"
    if blocks is not None and block_problem(blocks):
        return "invalid_blocks"
    return None


@dataclass
class SlackProvider:
    """Records what each webhook and the bot posted; ``messages`` holds every message's latest form."""

    token: str = "xoxb-local-bot-token"
    channels: dict[str, str] = field(default_factory=lambda: {"C0STATUS": "status"})  # id -> name
    team: str = "Local workspace"
    bot_user: str = "statusbot"
    min_interval_s: float = 0.0
    gone: set[str] = field(default_factory=set)  # webhook paths answering 404 no_service
    archived: set[str] = field(default_factory=set)  # webhook paths answering 410 channel_is_archived
    posts: list[dict[str, Any]] = field(default_factory=list)  # every accepted post and edit, in order
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> the message as it is now
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request, accepted or not
    rate_limited: int = 0  # posts refused by min_interval_s
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each entry of ``posts``
    _failures: list[float] = field(default_factory=list)  # Retry-After of each scripted 429
    _last_post: dict[str, float] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/services/{hook:path}", self._webhook, methods=["POST"]),
                Route("/api/{method}", self._api, methods=["POST"]),
            ]
        )

    def fail_next(self, status: int = 429, times: int = 1, retry_after_s: float = 2.0) -> None:
        """Answer the next ``times`` requests 429 ``ratelimited`` with ``Retry-After: retry_after_s``."""
        assert status == 429, "the local Slack scripts rate limits only"
        self._failures.extend([retry_after_s] * times)

    def webhook_posts(self, hook: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["via"] == "webhook" and (hook is None or p["hook"] == hook)]

    def _scripted(self) -> float | None:
        return self._failures.pop(0) if self._failures else None

    def _accept(self, entry: dict[str, Any]) -> None:
        self.posts.append(entry)
        if self.on_accept is not None:
            self.on_accept(entry)

    async def _webhook(self, request: Request) -> Response:
        hook = request.path_params["hook"]
        raw = await request.body()
        self.requests.append({"path": request.url.path, "body": raw})
        wait = self._scripted()
        if wait is not None:
            return PlainTextResponse("rate_limited", 429, headers={"Retry-After": f"{wait:g}"})
        if hook in self.gone or hook.count("/") != 2:
            return PlainTextResponse("no_service", 404)
        if hook in self.archived:
            return PlainTextResponse("channel_is_archived", 410)
        try:
            body = json.loads(raw)
        except ValueError:
            return PlainTextResponse("invalid_payload", 400)
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", 400)
        problem = message_problem(body)
        if problem:
            return PlainTextResponse(problem, 400)
        self._accept({"via": "webhook", "hook": hook, "action": "post", **_content(body)})
        return PlainTextResponse("ok")

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        raw = await request.body()
        self.requests.append({"path": request.url.path, "body": raw})
        wait = self._scripted()
        if wait is not None:
            return JSONResponse({"ok": False, "error": "ratelimited"}, 429, headers={"Retry-After": f"{wait:g}"})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _refuse("not_authed" if "authorization" not in request.headers else "invalid_auth")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _refuse("invalid_json")
        if not isinstance(body, dict):
            return _refuse("invalid_arguments")
        if method == "auth.test":
            return JSONResponse(
                {
                    "ok": True,
                    "url": "https://local.slack.test/",
                    "team": self.team,
                    "user": self.bot_user,
                    "team_id": "T0LOCAL",
                    "user_id": "U0BOT",
                    "bot_id": "B0BOT",
                }
            )
        if method == "chat.postMessage":
            return self._post_message(body)
        if method == "chat.update":
            return self._update(body)
        return JSONResponse({"ok": False, "error": "unknown_method"}, 404)

    def _channel_id(self, channel: Any) -> str | None:
        name = str(channel or "").removeprefix("#")
        if name in self.channels:
            return name
        return next((cid for cid, cname in self.channels.items() if cname == name), None)

    def _post_message(self, body: dict[str, Any]) -> Response:
        channel = self._channel_id(body.get("channel"))
        if channel is None:
            return _refuse("channel_not_found")
        problem = message_problem(body)
        if problem:
            return _refuse(problem)
        thread_ts = body.get("thread_ts")
        if thread_ts is not None and self.messages.get(str(thread_ts), {}).get("channel") != channel:
            return _refuse("thread_not_found")
        now = time.monotonic()
        if self.min_interval_s and now - self._last_post.get(channel, -1e9) < self.min_interval_s:
            self.rate_limited += 1
            return JSONResponse({"ok": False, "error": "ratelimited"}, 429, headers={"Retry-After": "1"})
        self._last_post[channel] = now
        ts = f"{1_764_000_000 + next(self._ts)}.000100"
        message = {"channel": channel, "ts": ts, "thread_ts": thread_ts, "edits": 0, **_content(body)}
        self.messages[ts] = message
        self._accept({"via": "bot", "action": "post", **message})
        return JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": _wire(message)})

    def _update(self, body: dict[str, Any]) -> Response:
        channel = self._channel_id(body.get("channel"))
        if channel is None:
            return _refuse("channel_not_found")
        message = self.messages.get(str(body.get("ts")))
        if message is None or message["channel"] != channel:
            return _refuse("message_not_found")
        problem = message_problem(body)
        if problem:
            return _refuse(problem)
        message.update(_content(body), edits=message["edits"] + 1)
        self._accept({"via": "bot", "action": "update", **message})
        return JSONResponse({"ok": True, "channel": channel, "ts": message["ts"], "message": _wire(message)})


def _content(body: dict[str, Any]) -> dict[str, Any]:
    return {"text": body.get("text"), "blocks": body.get("blocks") or []}


def _wire(message: dict[str, Any]) -> dict[str, Any]:
    """A message as Slack's answers show it."""
    shown = {"type": "message", "user": "U0BOT", "ts": message["ts"], "text": message["text"]}
    shown["blocks"] = message["blocks"]
    if message["thread_ts"]:
        shown["thread_ts"] = message["thread_ts"]
    return shown


def _refuse(error: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error})
