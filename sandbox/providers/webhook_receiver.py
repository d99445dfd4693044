"""A webhook receiver that verifies Standard Webhooks signatures and can answer with scripted codes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class WebhookReceiver:
    """Records every POST; ``script`` lists status codes to answer first (then 200)."""

    secret: str = ""
    script: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    verified: int = 0
    attempts: int = 0

    def ids(self) -> Counter[str]:
        return Counter(item["headers"]["webhook-id"] for item in self.received)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.attempts += 1
            body = await request.body()
            headers = {k: v for k, v in request.headers.items()}
            if self.script:
                return Response(status_code=self.script.pop(0))
            ok = False
            if self.secret:
                try:
                    Webhook(self.secret).verify(body, headers)
                    ok = True
                except WebhookVerificationError:
                    ok = False
            self.verified += ok
            self.received.append({"headers": headers, "body": body, "verified": ok})
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
