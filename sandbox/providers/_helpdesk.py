"""What the local help desks (Zendesk, Freshdesk) share: each request recorded, scripted failures,
basic auth checked exactly, JSON bodies only. Each desk answers in its own error shapes."""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response


@dataclass
class Received:
    method: str
    path: str
    json: Any


class HelpdeskFake:
    """The requests' common reading; a desk names its credentials and its error answers."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._failures: deque[tuple[int, float | None]] = deque()

    def fail(self, status: int = 500, times: int = 1, retry_after_s: float | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After`` if given)."""
        self._failures.extend([(status, retry_after_s)] * times)

    def basic_credentials(self) -> str:
        """``user:password`` of the basic auth the desk accepts."""
        raise NotImplementedError

    def failure(self, status: int, headers: dict[str, str]) -> Response:
        """A scripted failure's answer."""
        raise NotImplementedError

    def unauthorized(self) -> Response:
        raise NotImplementedError

    def bad_content_type(self) -> Response:
        raise NotImplementedError

    def bad_json(self) -> Response:
        raise NotImplementedError

    async def _receive(self, request: Request) -> tuple[Any, Response | None]:
        """The request's JSON (``None`` without a body), or the answer refusing it."""
        body = await request.body()
        try:
            payload = await request.json() if body else None
        except ValueError:
            payload = body.decode(errors="replace")
        self.received.append(Received(request.method, request.url.path, payload))
        if self._failures:
            status, retry_after_s = self._failures.popleft()
            return None, self.failure(
                status, {"Retry-After": str(int(retry_after_s))} if retry_after_s is not None else {}
            )
        expected = base64.b64encode(self.basic_credentials().encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return None, self.unauthorized()
        if body and not request.headers.get("content-type", "").startswith("application/json"):
            return None, self.bad_content_type()
        if isinstance(payload, str):
            return None, self.bad_json()
        return payload, None
