"""Console: subscribers out and in as CSV (admins). Upload shows what would change; nothing is kept until confirmed.

The preview re-sends the file's text with the confirmation, so what is applied is what was
previewed; it is checked again then, and applied all or nothing in one transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from broadcaster.db import subscribers
from broadcaster.domain import audit
from broadcaster.errors import InputError
from broadcaster.i18n import N_, gettext
from broadcaster.importing.subscribers_csv import COLUMNS, Action, CsvPlan, apply_csv, export_csv, plan_csv
from broadcaster.models import Role
from status_page.api.subscribers_csv import csv_download
from status_page.auth import check_csrf, require_role, user_actor
from status_page.console._kit import page, redirect, text
from status_page.http import runtime

IMPORT_PATH = "/console/subscribers/import"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # about 25,000 subscribers; bigger lists: broadcaster subscribers import
SHOWN_ROWS = 200
ACTIONS: dict[str, str] = {
    Action.CREATE: N_("create"),
    Action.UPDATE: N_("update"),
    Action.UNCHANGED: N_("unchanged"),
    Action.KEPT: N_("kept unsubscribed"),
}


def action_label(action: str) -> str:
    """What an import does to a row, in the reader's language."""
    known = ACTIONS.get(action)
    return gettext(known) if known else action


async def overview(request: Request) -> Response:
    user = require_role(request, Role.ADMIN)
    query = (
        select(subscribers.c.channel, subscribers.c.confirmed, func.count())
        .where(subscribers.c.drill.is_(False), subscribers.c.unsubscribed_at.is_(None))
        .group_by(subscribers.c.channel, subscribers.c.confirmed)
    )
    async with runtime(request).engine.connect() as conn:
        counts: dict[str, dict[str, int]] = {}
        for channel, confirmed, count in await conn.execute(query):
            counts.setdefault(str(channel), {"confirmed": 0, "unconfirmed": 0})[
                "confirmed" if confirmed else "unconfirmed"
            ] += int(count)
    notice = request.query_params.get("notice", "")[:300]
    return page(request, "console/subscribers.html", user, counts=counts, columns=COLUMNS, notice=notice)


async def download(request: Request) -> Response:
    user = require_role(request, Role.ADMIN)
    async with runtime(request).engine.begin() as conn:
        body, rows = await export_csv(conn)
        await audit.record(conn, str(user_actor(user)), "subscribers.export", rows=rows)
    return csv_download(body)


async def _upload_text(form: FormData) -> str:
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_UPLOAD_BYTES + 1)
    else:
        raw = text(form, "csv").encode()
    if not raw.strip():
        raise InputError("no file", {"file": "choose a CSV file"})
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InputError("file too large", {"file": f"at most {MAX_UPLOAD_BYTES} bytes; use the CLI for more"})
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not UTF-8", {"file": "must be UTF-8 text"}) from None


def _preview(request: Request, user: dict[str, Any], plan: CsvPlan, csv_text: str, confirmed: bool) -> Response:
    changing = [r for r in plan.rows if r.action in (Action.CREATE, Action.UPDATE, Action.KEPT)]
    return page(
        request,
        "console/subscribers_preview.html",
        user,
        status_code=422 if plan.errors else 200,
        plan=plan,
        counts=plan.counts(),
        rows=changing[:SHOWN_ROWS],
        more=max(0, len(changing) - SHOWN_ROWS),
        csv_text=csv_text,
        confirmed=confirmed,
        action_label=action_label,
    )


async def upload(request: Request) -> Response:
    """``step=preview`` (the default): what the file would change. ``step=apply``: do it."""
    user = require_role(request, Role.ADMIN)
    form = await request.form(max_part_size=MAX_UPLOAD_BYTES)  # read first: the CSRF check reuses it
    await check_csrf(request)
    csv_text = await _upload_text(form)
    confirmed = text(form, "confirmed") == "1"
    rt = runtime(request)
    allow_private, languages = rt.settings.webhook_allow_private, rt.settings.languages
    if text(form, "step") != "apply":
        async with rt.engine.connect() as conn:
            plan = await plan_csv(
                conn, csv_text, confirmed=confirmed, allow_private_webhooks=allow_private, languages=languages
            )
        return _preview(request, user, plan, csv_text, confirmed)
    async with rt.engine.begin() as conn:
        plan = await plan_csv(
            conn, csv_text, confirmed=confirmed, allow_private_webhooks=allow_private, languages=languages
        )
        if plan.errors:
            counts = None
        else:
            counts = await apply_csv(conn, plan, allow_private_webhooks=allow_private)
            await audit.record(conn, str(user_actor(user)), "subscribers.import", counts=counts)
    if counts is None:
        return _preview(request, user, plan, csv_text, confirmed)
    new, updated, same = counts[Action.CREATE], counts[Action.UPDATE], counts[Action.UNCHANGED]
    notice = gettext(
        "Imported: %(new)s new, %(updated)s updated, %(same)s unchanged.", new=new, updated=updated, same=same
    )
    return redirect(f"/console/subscribers?notice={notice.replace(' ', '+')}")


routes: list[BaseRoute] = [
    Route("/console/subscribers", overview, methods=["GET"]),
    Route("/console/subscribers/export.csv", download, methods=["GET"]),
    Route(IMPORT_PATH, upload, methods=["POST"]),
]
