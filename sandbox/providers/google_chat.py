"""A local Google Chat: a space's incoming webhook, ``POST /v1/spaces/{space}/messages?key=…&token=…``.

Checks what Chat checks: the ``key`` (``403 PERMISSION_DENIED``) and ``token``
(``401 UNAUTHENTICATED``), ``messageReplyOption`` from Chat's enum, a message with ``text``
(≤ 4096) or ``cardsV2``, no unknown field (``400 INVALID_ARGUMENT: Unknown name``), each card
with a header title and sections whose widgets are each exactly one known widget. Threads go
as Chat's do: with ``REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`` (or ``REPLY_MESSAGE_OR_FAIL``) a
``thread.threadKey`` seen before replies in that thread; without a reply option every message
starts a thread. Answers the message made (``name``, ``thread.name``), Google's
``{"error": {"code", "message", "status"}}`` otherwise; a space marked gone answers
``404 NOT_FOUND``. ``fail_next(429, retry_after_s=2)`` scripts ``RESOURCE_EXHAUSTED``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

REPLY_OPTIONS = {"MESSAGE_REPLY_OPTION_UNSPECIFIED", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD", "REPLY_MESSAGE_OR_FAIL"}
MESSAGE_FIELDS = {"text", "cardsV2", "thread", "fallbackText", "accessoryWidgets"}
CARD_FIELDS = {"header", "sections", "cardActions", "name", "fixedFooter", "sectionDividerStyle", "peekCardHeader"}
HEADER_FIELDS = {"title", "subtitle", "imageUrl", "imageType", "imageAltText"}
SECTION_FIELDS = {"header", "widgets", "collapsible", "uncollapsibleWidgetsCount"}
WIDGETS = {
    "textParagraph": {"text", "maxLines"},
    "decoratedText": {"text", "topLabel", "bottomLabel", "startIcon", "wrapText", "button", "onClick"},
    "buttonList": {"buttons"},
    "divider": set(),
    "image": {"imageUrl", "altText", "onClick"},
}
BUTTON_FIELDS = {"text", "onClick", "icon", "color", "disabled", "altText"}
TEXT_MAX = 4096


def unknown(fields: Any, allowed: set[str], where: str) -> str | None:
    if not isinstance(fields, dict):
        return f"Invalid value at '{where}', expected an object"
    extra = sorted(set(fields) - allowed)
    if not extra:
        return None
    return f"Invalid JSON payload received. Unknown name \"{extra[0]}\" at '{where}': Cannot find field."


def card_problem(card: Any, where: str) -> str | None:
    """Why Chat would refuse ``card`` (``cardsV2[i].card``), or ``None``."""
    problem = unknown(card, CARD_FIELDS, where)
    if problem:
        return problem
    header = card.get("header")
    if header is not None:
        problem = unknown(header, HEADER_FIELDS, f"{where}.header")
        if problem or not header.get("title"):
            return problem or f"{where}.header.title: required"
    for s, section in enumerate(card.get("sections") or []):
        at = f"{where}.sections[{s}]"
        problem = unknown(section, SECTION_FIELDS, at)
        if problem:
            return problem
        for w, widget in enumerate(section.get("widgets") or []):
            problem = _widget_problem(widget, f"{at}.widgets[{w}]")
            if problem:
                return problem
    return None


def _widget_problem(widget: Any, where: str) -> str | None:
    if not isinstance(widget, dict) or len(widget) != 1 or next(iter(widget)) not in WIDGETS:
        return f"{where}: a widget must be exactly one of {', '.join(sorted(WIDGETS))}"
    kind, value = next(iter(widget.items()))
    problem = unknown(value, WIDGETS[kind], f"{where}.{kind}")
    if problem:
        return problem
    if kind in ("textParagraph", "decoratedText") and not isinstance(value.get("text"), str):
        return f"{where}.{kind}.text: required"
    if kind == "textParagraph" and len(value["text"]) > TEXT_MAX:
        return f"{where}.textParagraph.text: longer than {TEXT_MAX} characters"
    for b, button in enumerate(value.get("buttons") or [] if kind == "buttonList" else []):
        problem = unknown(button, BUTTON_FIELDS, f"{where}.buttonList.buttons[{b}]")
        url = (((button or {}).get("onClick") or {}).get("openLink") or {}).get("url", "")
        if problem or not str(url).startswith(("https://", "http://")):
            return problem or f"{where}.buttonList.buttons[{b}].onClick.openLink.url: an http(s) URL"
    return None


@dataclass
class GoogleChatProvider:
    """Records each message made (``messages``); any space is a webhook's unless marked gone."""

    gone: set[str] = field(default_factory=set)  # space ids answering 404
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each message made
    _threads: dict[tuple[str, str], str] = field(default_factory=dict)  # (space, threadKey) -> thread name
    _failures: list[float] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/v1/spaces/{space}/messages", self._create, methods=["POST"])])

    def fail_next(self, status: int = 429, times: int = 1, retry_after_s: float = 2.0) -> None:
        assert status == 429, "the local Google Chat scripts rate limits only"
        self._failures.extend([retry_after_s] * times)

    def threads(self) -> set[str]:
        return {m["thread"]["name"] for m in self.messages}

    async def _create(self, request: Request) -> Response:
        space = request.path_params["space"]
        raw = await request.body()
        query = request.query_params
        self.requests.append({"path": request.url.path, "query": dict(query), "body": raw})
        if self._failures:
            wait = self._failures.pop(0)
            exhausted = "Resource has been exhausted (e.g. check quota)."
            return _error(429, "RESOURCE_EXHAUSTED", exhausted, {"Retry-After": f"{wait:g}"})
        if not query.get("key"):
            return _error(403, "PERMISSION_DENIED", "The request is missing a valid API key.")
        if not query.get("token"):
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if space in self.gone:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        option = query.get("messageReplyOption", "MESSAGE_REPLY_OPTION_UNSPECIFIED")
        if option not in REPLY_OPTIONS:
            return _error(400, "INVALID_ARGUMENT", f"Invalid value at 'message_reply_option' (\"{option}\")")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        problem = self._problem(body)
        if problem:
            return _error(400, "INVALID_ARGUMENT", problem)
        key = str((body.get("thread") or {}).get("threadKey") or "")
        thread = self._threads.get((space, key)) if key and option != "MESSAGE_REPLY_OPTION_UNSPECIFIED" else None
        replied = thread is not None
        if thread is None:
            thread = f"spaces/{space}/threads/t{next(self._ids)}"
            if key:
                self._threads[(space, key)] = thread
        message = {
            "name": f"spaces/{space}/messages/m{next(self._ids)}",
            "space": {"name": f"spaces/{space}"},
            "text": body.get("text", ""),
            "cardsV2": body.get("cardsV2") or [],
            "thread": {"name": thread, **({"threadKey": key} if key else {})},
            "threadReply": replied,
        }
        self.messages.append(message)
        if self.on_accept is not None:
            self.on_accept(message)
        return JSONResponse(message)

    def _problem(self, body: Any) -> str | None:
        problem = unknown(body, MESSAGE_FIELDS, "message")
        if problem:
            return problem
        if not body.get("text") and not body.get("cardsV2"):
            return "Message cannot be empty."
        if len(str(body.get("text") or "")) > TEXT_MAX:
            return f"Message text is longer than {TEXT_MAX} characters."
        for n, item in enumerate(body.get("cardsV2") or []):
            if not isinstance(item, dict) or set(item) - {"cardId", "card"} or "card" not in item:
                return f"cardsV2[{n}]: must be {{cardId, card}}"
            problem = card_problem(item["card"], f"message.cards_v2[{n}].card")
            if problem:
                return problem
        return None


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message, "status": code}}, status, headers=headers)
