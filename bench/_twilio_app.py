"""The local Twilio Messages API of the tests, as an ASGI app for a process of its own.

    uvicorn bench._twilio_app:app --port 8765

``GET /_bench/count`` answers ``{"messages": accepted, "requests": all}`` so a bench can
check what the provider received without sharing memory with it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.providers.twilio import TwilioProvider

provider = TwilioProvider()


async def count(request: Request) -> JSONResponse:
    return JSONResponse({"messages": len(provider.messages), "requests": provider.requests})


app: Starlette = provider.app
app.router.routes.append(Route("/_bench/count", count, methods=["GET"]))
