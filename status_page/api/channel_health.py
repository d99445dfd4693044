"""``GET /api/v1/channels/health`` (admin): every enabled channel's pre-flight check.

Runs the checks now (``broadcaster.delivery.preflight.run``: results stored, commanders told
of a new failure once), or with ``?cached=1`` answers the last stored results. 200 either
way; ``ok`` says whether every channel that has a check passed it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from broadcaster.delivery import preflight
from broadcaster.models import Role
from broadcaster.render import iso
from status_page.http import HTTPError, require_token, runtime

FLAGS = {"1": True, "true": True, "0": False, "false": False}


def check_json(check: preflight.ChannelCheck) -> dict[str, Any]:
    return {
        "channel": check.channel,
        "title": check.title,
        "ok": check.ok,
        "skipped": check.skipped,
        "reason": check.reason,
        "detail": check.detail,
        "checked_at": iso(check.checked_at),
        "failing_since": iso(check.failing_since),
        "last_delivered_at": iso(check.last_delivered_at),
    }


async def channel_health(request: Request) -> Response:
    await require_token(request, Role.ADMIN)
    raw = request.query_params.get("cached", "0").strip().lower()
    if raw not in FLAGS:
        raise HTTPError(400, "bad_request", "cached must be 1 or 0", {"cached": "must be 1, 0, true or false"})
    rt = runtime(request)
    checks = await (preflight.stored(rt) if FLAGS[raw] else preflight.run(rt))
    return JSONResponse(
        {"channels": [check_json(c) for c in checks], "ok": preflight.all_ok(checks)},
        headers={"Cache-Control": "no-store"},
    )


routes: list[BaseRoute] = [Route("/api/v1/channels/health", channel_health, methods=["GET"])]
