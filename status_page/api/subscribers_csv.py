"""``GET /api/v1/subscribers.csv`` (admin): every active subscriber as CSV, the file ``subscribers import`` reads."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcaster.domain import audit
from broadcaster.importing.subscribers_csv import export_csv
from broadcaster.models import Role
from status_page.http import require_token, runtime, token_actor

CSV_TYPE = "text/csv; charset=utf-8"


def csv_download(body: str, filename: str = "subscribers.csv") -> Response:
    """``body`` as a CSV attachment, never cached (it holds addresses)."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return Response(body, media_type=CSV_TYPE, headers=headers)


async def export_subscribers(request: Request) -> Response:
    token = await require_token(request, Role.ADMIN)
    async with runtime(request).engine.begin() as conn:
        body, rows = await export_csv(conn)
        await audit.record(conn, str(token_actor(token)), "subscribers.export", rows=rows)
    return csv_download(body)


routes = [Route("/api/v1/subscribers.csv", export_subscribers, methods=["GET"])]
