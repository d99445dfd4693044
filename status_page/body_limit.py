"""Request bodies capped on every route (``BROADCASTER_MAX_BODY_BYTES``), forms included, counted as they stream.

A declared ``Content-Length`` over the cap is answered 413 before the app runs, so nothing of the
body is read; a body without one (chunked) is counted chunk by chunk and refused with 413 as soon
as it passes the cap. A route that takes uploads names its own, larger cap (``uploads``)::

    Middleware(BodyLimitMiddleware, max_bytes=65536, uploads={"/console/playbooks/import": 1114112})
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from status_page.http import handle_starlette_error


class BodyTooLarge(HTTPException):
    """The body passed its cap; answered 413 by the app's ``HTTPException`` handler."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the body is over {max_bytes} bytes")


class BodyLimitMiddleware:
    """413 for any request body over ``max_bytes`` (or the path's entry in ``uploads``)."""

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = dict(uploads or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads.get(scope["path"], self.max_bytes)
        declared = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
        if declared is not None:
            if not declared.strip().isdigit():
                await self._refuse(scope, receive, send, HTTPException(400, "invalid Content-Length"))
                return
            if int(declared) > limit:
                await self._refuse(scope, receive, send, BodyTooLarge(limit))
                return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:  # raised where no route's handler could answer it
            if started:
                raise
            await self._refuse(scope, receive, send, exc)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, exc: HTTPException) -> None:
        request = Request(scope, receive)
        response = await handle_starlette_error(request, exc)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)
