"""A local Microsoft Teams Workflows webhook ("When a Teams webhook request is received").

``POST /workflows/{id}/triggers/manual/paths/invoke?api-version=…&sig=…`` takes a message
whose attachments are Adaptive Cards, and answers ``202`` with an ``x-ms-workflow-run-id``,
as the Workflows endpoint does. It refuses what Teams would not show: a missing ``sig``
(``401 DirectApiAuthorizationRequired``), a body that is not a message of Adaptive Card
attachments, a card whose structure is wrong (``400 InvalidRequestContent``: version, body
element types, a ``TextBlock`` without text, a ``FactSet`` of anything but title/value
strings, an ``Action.OpenUrl`` without an http(s) URL), a message over 28 KB (``413``), and a
workflow marked gone (``404 WorkflowNotFound``). ``fail_next(429, retry_after_s=2)`` scripts
rate limits.
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

CARD = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 28 * 1024
ELEMENTS = {"TextBlock", "FactSet", "Container", "ColumnSet", "Image", "ActionSet", "RichTextBlock", "Table"}
ACTIONS = {"Action.OpenUrl", "Action.ShowCard", "Action.ToggleVisibility", "Action.Execute", "Action.Submit"}


def card_problem(card: Any) -> str | None:
    """What is structurally wrong with an Adaptive Card for Teams, or ``None``."""
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return "content: must be an object of type AdaptiveCard"
    version = card.get("version")
    if not isinstance(version, str) or version not in {"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"}:
        return "content.version: must be an Adaptive Card version Teams renders (1.0-1.5)"
    body = card.get("body", [])
    if not isinstance(body, list):
        return "content.body: must be an array"
    for n, element in enumerate(body):
        where = f"content.body[{n}]"
        kind = element.get("type") if isinstance(element, dict) else None
        if kind not in ELEMENTS:
            return f"{where}: unknown element type {kind!r}"
        if kind == "TextBlock" and not (isinstance(element.get("text"), str) and element["text"]):
            return f"{where}.text: required"
        if kind == "FactSet":
            facts = element.get("facts")
            if not isinstance(facts, list) or not all(
                isinstance(f, dict) and set(f) == {"title", "value"} and all(isinstance(v, str) for v in f.values())
                for f in facts
            ):
                return f"{where}.facts: must be an array of {{title, value}} strings"
    for n, action in enumerate(card.get("actions", [])):
        where = f"content.actions[{n}]"
        if not isinstance(action, dict) or action.get("type") not in ACTIONS:
            return f"{where}: unknown action type"
        if action["type"] == "Action.OpenUrl" and not str(action.get("url", "")).startswith(("https://", "http://")):
            return f"{where}.url: must be an http(s) URL"
    return None


@dataclass
class TeamsProvider:
    """Records each accepted message (``received``) with the workflow it reached."""

    gone: set[str] = field(default_factory=set)  # workflow ids answering 404
    received: list[dict[str, Any]] = field(default_factory=list)  # {"workflow", "run_id", "message"}
    requests: list[dict[str, Any]] = field(default_factory=list)
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each entry of ``received``
    _failures: list[float] = field(default_factory=list)
    _runs: itertools.count[int] = field(default_factory=lambda: itertools.count(8_584_000_000_000_000_001))

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[Route("/workflows/{workflow}/triggers/manual/paths/invoke", self._invoke, methods=["POST"])]
        )

    def fail_next(self, status: int = 429, times: int = 1, retry_after_s: float = 2.0) -> None:
        assert status == 429, "the local Teams scripts rate limits only"
        self._failures.extend([retry_after_s] * times)

    async def _invoke(self, request: Request) -> Response:
        workflow = request.path_params["workflow"]
        raw = await request.body()
        self.requests.append({"path": request.url.path, "body": raw})
        if self._failures:
            wait = self._failures.pop(0)
            return _error(429, "WorkflowTriggeredTooManyTimes", "Rate limit is exceeded.", {"Retry-After": f"{wait:g}"})
        if not request.query_params.get("sig"):
            return _error(401, "DirectApiAuthorizationRequired", "The request must be authenticated with a signature.")
        if workflow in self.gone:
            return _error(404, "WorkflowNotFound", f"The workflow '{workflow}' could not be found.")
        if len(raw) > MAX_BYTES:
            return _error(413, "MessageSizeTooBig", f"The message is over {MAX_BYTES} bytes.")
        try:
            message = json.loads(raw)
        except ValueError:
            return _error(400, "InvalidRequestContent", "The request content is not valid JSON.")
        problem = _message_problem(message)
        if problem:
            return _error(400, "InvalidRequestContent", problem)
        run_id = str(next(self._runs))
        entry = {"workflow": workflow, "run_id": run_id, "message": message}
        self.received.append(entry)
        if self.on_accept is not None:
            self.on_accept(entry)
        return Response(status_code=202, headers={"x-ms-workflow-run-id": run_id})


def _message_problem(message: Any) -> str | None:
    if not isinstance(message, dict) or message.get("type") != "message":
        return "the body must be a message: {type: message, attachments: [...]}"
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments: at least one Adaptive Card"
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD:
            return f"attachments: contentType must be {CARD}"
        problem = card_problem(attachment.get("content"))
        if problem:
            return problem
    return None


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)
