"""The tests' local Discord (Execute Webhook) as an ASGI app for a process of its own.

    uvicorn bench._discord_app:app --port 8766

``GET /_bench/count`` answers ``{"messages": accepted, "requests": all}`` so a bench can check
what the provider received without sharing memory with it. The provider checks and answers
every message as in the tests, but keeps none: a bench only counts them, and thousands of
kept messages would slow the provider down as the rounds go by (the collector walks them all).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.providers.discord import DiscordProvider

provider = DiscordProvider()
counts = {"messages": 0, "requests": 0}


def _accepted(message: dict[str, Any]) -> None:
    counts["messages"] += 1


async def count(request: Request) -> JSONResponse:
    return JSONResponse(counts)


provider.on_accept = _accepted
provider.app.router.routes.append(Route("/_bench/count", count, methods=["GET"]))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await provider.app(scope, receive, send)
    if scope["type"] == "http" and scope["path"] != "/_bench/count":
        counts["requests"] += 1
        provider.messages.clear()
        provider.requests.clear()
