"""The app over granian's RSGI interface: the cached hot GETs answered natively, the rest over ASGI.

RSGI hands the app granian's own request object and takes the response as one call
(``response_bytes``), so a cached page skips the ASGI scope dict, the two ``send`` messages and
the header conversions on both sides: under a crowd, the page costs what a bare RSGI app costs.
Every other request is bridged to the ASGI app unchanged: its scope built as an ASGI server
would, the body streamed in chunks as it arrives (``BodyLimitMiddleware`` still counts them),
``http.disconnect`` when the client goes (live streams end), a streamed response when the app
sends more than one body message. The app's lifespan runs around the worker's life
(``__rsgi_init__``/``__rsgi_del__``), as granian runs an ASGI app's lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Scope

from status_page.public.fast_path import FastPath, chose_language

log = logging.getLogger(__name__)

ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}


class RSGIHeaders(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def get_all(self, key: str) -> list[str]: ...
    def items(self) -> list[tuple[str, str]]: ...
    def __contains__(self, key: str) -> bool: ...


class RSGIScope(Protocol):
    proto: str
    http_version: str
    server: str
    client: str
    scheme: str
    method: str
    path: str
    query_string: str

    @property
    def headers(self) -> RSGIHeaders: ...


def _encoded(value: str | None) -> bytes | None:
    return None if value is None else value.encode("latin-1", "replace")


def _address(value: str) -> tuple[str, int] | None:
    host, _, port = value.rpartition(":")
    if not host:
        return None
    return host.strip("[]"), int(port) if port.isdigit() else 0


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # granian decoded the raw bytes as UTF-8: give the app those bytes
        return value.encode("utf-8", "surrogateescape")


def asgi_scope(scope: RSGIScope, state: dict[str, Any]) -> Scope:
    """The ASGI scope an ASGI server would build for this request."""
    path = scope.path
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": path,
        "raw_path": path.encode("utf-8"),
        "root_path": "",
        "query_string": scope.query_string.encode("latin-1", "replace"),
        "headers": [(name.encode("latin-1"), _header_bytes(value)) for name, value in scope.headers.items()],
        "server": _address(scope.server),
        "client": _address(scope.client),
        "state": state.copy(),
    }


class Bridge:
    """Runs one ASGI request over an RSGI protocol object."""

    __slots__ = ("body", "finished", "headers", "protocol", "started", "status", "stream")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.body: Any = None  # the request body's chunk iterator, once reading began
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.stream: Any = None
        self.started = False
        self.finished = False

    async def receive(self) -> Message:
        if self.body is None:
            self.body = self.protocol.__aiter__()
        if self.body is not False:
            try:
                chunk = await self.body.__anext__()
            except StopAsyncIteration:
                self.body = False
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}
        await self.protocol.client_disconnect()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", ())]
            self.started = True
        elif kind == "http.response.body" and not self.finished:
            body, more = message.get("body", b""), message.get("more_body", False)
            if self.stream is None and not more:
                self.finished = True
                self.protocol.response_bytes(self.status, self.headers, body)
                return
            if self.stream is None:
                self.stream = self.protocol.response_stream(self.status, self.headers)
            if body:
                await self.stream.send_bytes(body)
            if not more:
                self.finished = True

    def finish(self) -> None:
        """Close what the app left open: a streamed response, or one that never started (a 500)."""
        if self.finished:
            return
        if self.stream is None:
            status = self.status if self.started else 500
            self.protocol.response_bytes(status, self.headers if self.started else [], b"")
        self.finished = True


class RSGIServing:
    """The RSGI callables for an ASGI app with a ``FastPath`` (``status_page.app.StatusPageApp``)."""

    def __init__(
        self,
        app: ASGIApp,
        fast_path: Callable[[], FastPath | None],
        lifespan: Callable[[], AbstractAsyncContextManager[Any]],
    ) -> None:
        self.app = app
        self.fast_path = fast_path
        self.lifespan = lifespan
        self.state: dict[str, Any] = {}
        self._running: AbstractAsyncContextManager[Any] | None = None

    def init(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the app (its lifespan's start-up) before the worker takes requests."""
        self._running = self.lifespan()
        state = loop.run_until_complete(self._running.__aenter__())
        if isinstance(state, dict):
            self.state.update(state)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the lifespan's shut-down once the worker stopped taking requests."""
        if self._running is not None:
            running, self._running = self._running, None
            loop.run_until_complete(running.__aexit__(None, None, None))

    async def __call__(self, scope: RSGIScope, protocol: Any) -> None:
        if scope.proto != "http":
            return  # granian runs with websockets off (``--no-ws``); nothing here speaks them
        fast = self.fast_path()
        if fast is not None and scope.path in fast.paths:
            headers = scope.headers
            cookie = ";".join(headers.get_all("cookie")) if "cookie" in headers else None
            reply = fast.ready(
                scope.method,
                scope.path,
                picked_language=chose_language(scope.query_string, cookie),
                accept_language=headers.get("accept-language"),
                if_none_match=_encoded(headers.get("if-none-match")),
                accept_encoding=_encoded(headers.get("accept-encoding")),
            )
            if reply is not None:
                protocol.response_bytes(reply.status, reply.text_headers, reply.body)
                return
        await self.bridge(scope, protocol)

    async def bridge(self, scope: RSGIScope, protocol: Any) -> None:
        """Run the ASGI app for this request."""
        bridge = Bridge(protocol)
        try:
            await self.app(asgi_scope(scope, self.state), bridge.receive, bridge.send)
        finally:
            bridge.finish()
