"""A webhook receiver that counts what it accepted per URL and misbehaves on request."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class ChaosReceiver:
    """Counts 2xx answers per path; ``misbehave(mode, seconds)`` answers 500, 429 or times out meanwhile."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.accepted: Counter[str] = Counter()
        self.refused = 0
        self.mode = ""
        self.until = 0.0
        self.hang_s = 5.0

    def misbehave(self, mode: str, seconds: float) -> None:
        self.mode, self.until = mode, time.monotonic() + seconds

    def received(self, base: str) -> Counter[str]:
        return Counter({f"{base}{path}": n for path, n in self.accepted.items()})

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            await request.body()
            if self.mode and time.monotonic() < self.until:
                self.refused += 1
                if self.mode == "500":
                    return Response("boom", status_code=500)
                if self.mode == "429":
                    return Response("slow down", status_code=429, headers={"Retry-After": "1"})
                if self.mode == "timeout":
                    await asyncio.sleep(self.hang_s)
                    return Response("too late", status_code=503)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            self.accepted[request.url.path] += 1
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook/{n}", hook, methods=["POST"])])
