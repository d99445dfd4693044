"""Console screens for what alerts propose (``/console/drafts``) and the alert rules (``/console/alerts``).

- ``/console/drafts``: pending drafts (the dashboard's banner links here), then the recent decisions.
- ``/console/drafts/{id}``: the alerts behind a draft, every channel's exact rendition
  (``posting.preview``), one button to send it as previewed; ``?title=&message=`` previews other words,
  which the send then carries. Discard drops it.
- ``/console/alerts``: the rules (add, delete), for each source its webhook URL (with the source's
  ``?token=`` secret for commanders) and the sender's configuration, and how listening for replies goes.

Every page needs a logged-in user; every change the commander role and the session's CSRF token.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from broadcaster.alerts import auth, drafts, rules
from broadcaster.crisis import playbooks
from broadcaster.domain import audit
from broadcaster.domain import components as component_store
from broadcaster.domain import incident_templates as template_store
from broadcaster.domain.users import has_role
from broadcaster.errors import InputError
from broadcaster.i18n import gettext
from broadcaster.jobs import listening
from broadcaster.models import AlertSource, ComponentStatus, DraftState, Role
from broadcaster.schemas import validate
from status_page.auth import user_actor
from status_page.console._kit import commander, page, redirect, text, viewer
from status_page.http import runtime


async def drafts_page(request: Request) -> Response:
    user = viewer(request)
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        pending = await drafts.list_drafts(conn, DraftState.PENDING)
        recent = [d for d in await drafts.list_drafts(conn, None, 30) if d["state"] != DraftState.PENDING.value]
    return page(request, "console/drafts.html", user, pending=pending, recent=recent)


async def draft_page(request: Request) -> Response:
    user = viewer(request)
    rt = runtime(request)
    draft_id = request.path_params["draft_id"]
    title = (request.query_params.get("title") or "").strip() or None
    message = (request.query_params.get("message") or "").strip() or None
    async with rt.engine.connect() as conn:
        row = await drafts.get_draft(conn, draft_id)
    previews, problem = {}, None
    if row["state"] == DraftState.PENDING.value:
        try:
            previews = await drafts.preview(rt, draft_id, user_actor(user), title=title, message=message)
        except InputError as exc:
            problem = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message
    return page(
        request,
        "console/draft.html",
        user,
        draft=drafts.draft_json(row, rt.settings.public_url),
        row=row,
        previews=previews,
        problem=problem,
        title=title or "",
        message=message or "",
    )


async def publish(request: Request) -> Response:
    user = await commander(request)
    draft_id = request.path_params["draft_id"]
    form = await request.form()
    title, message = text(form, "title") or None, text(form, "message") or None
    # A double-submitted send of the same words replays the first answer.
    key = hashlib.sha256(f"{draft_id}\n{title}\n{message}".encode()).hexdigest()
    result = await drafts.publish(
        runtime(request), draft_id, user_actor(user), title=title, message=message, idempotency_key=key
    )
    ref = result.ref or {}
    return redirect(f"/console/incidents/{ref['incident_id']}" if ref else "/console/drafts")


async def discard(request: Request) -> Response:
    user = await commander(request)
    await drafts.discard(runtime(request), request.path_params["draft_id"], user_actor(user))
    return redirect("/console/drafts")


# --- rules ---------------------------------------------------------------------------------------


def rule_body(form: FormData) -> dict[str, Any]:
    """The rule form as ``AlertRuleIn`` data: ``match`` one ``field=value`` a line, a status per component."""
    match: dict[str, str] = {}
    for number, line in enumerate(text(form, "match").splitlines(), 1):
        if line.strip():
            field, sep, value = line.partition("=")
            if not sep:
                raise InputError(
                    "one field=value a line", {"match": gettext("line %(number)s has no '='", number=number)}
                )
            match[field.strip()] = value.strip()
    chosen = {
        str(key).removeprefix("component_"): str(value)
        for key, value in form.items()
        if str(key).startswith("component_") and value
    }
    level, after = text(form, "level"), text(form, "auto_publish_after_s")
    body: dict[str, Any] = {
        "source": text(form, "source"),
        "match": match,
        "components": chosen,
        "name": text(form, "name") or None,
        "template_id": text(form, "template_id") or None,
        "title": text(form, "title") or None,
        "message": text(form, "message") or None,
        "playbook_id": text(form, "playbook_id") or None,
        "level": int(level) if level.isdigit() else level or None,
        "auto_publish_after_s": int(after) if after.isdigit() else after or None,
    }
    return body


async def rules_page(request: Request, status_code: int = 200, errors: dict[str, str] | None = None) -> Response:
    user = viewer(request)
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        rows = await rules.list_rules(conn)
        components = [c for c in await component_store.list_components(conn) if not c["is_group"]]
        templates = await template_store.list_templates(conn)
        books = await playbooks.list_playbooks(conn)
        polls = await listening.polls(conn)
    secret = rt.settings.secret_key.get_secret_value()
    senders = {
        source.value: {
            "url": f"{rt.settings.public_url}/api/v1/alerts/{source.value}",
            "token": auth.source_token(secret, source) if has_role(user, Role.COMMANDER) else "",
        }
        for source in AlertSource
    }
    return page(
        request,
        "console/alert_rules.html",
        user,
        status_code=status_code,
        rules=rows,
        components=components,
        templates=templates,
        playbooks=books,
        senders=senders,
        component_statuses=[s.value for s in ComponentStatus],
        pagerduty_secret_set=rt.settings.pagerduty_webhook_secret is not None,
        listening={name: polls.get(name, {}) for name in listening.listening_channels(rt)},
        errors=errors or {},
    )


async def create_rule(request: Request) -> Response:
    user = await commander(request)
    try:
        data = validate(rules.AlertRuleIn, rule_body(await request.form()))
        async with runtime(request).engine.begin() as conn:
            row = await rules.save_rule(conn, data)
            await audit.record(conn, str(user_actor(user)), "alert_rule.create", target=row["id"], source=row["source"])
    except InputError as exc:
        return await rules_page(request, exc.status_code, exc.fields or {"form": exc.message})
    return redirect("/console/alerts")


async def delete_rule(request: Request) -> Response:
    user = await commander(request)
    rule_id = request.path_params["rule_id"]
    async with runtime(request).engine.begin() as conn:
        await rules.delete_rule(conn, rule_id)
        await audit.record(conn, str(user_actor(user)), "alert_rule.delete", target=rule_id)
    return redirect("/console/alerts")


routes: list[BaseRoute] = [
    Route("/console/drafts", drafts_page, methods=["GET"]),
    Route("/console/drafts/{draft_id}", draft_page, methods=["GET"]),
    Route("/console/drafts/{draft_id}/publish", publish, methods=["POST"]),
    Route("/console/drafts/{draft_id}/discard", discard, methods=["POST"]),
    Route("/console/alerts", rules_page, methods=["GET"]),
    Route("/console/alerts", create_rule, methods=["POST"]),
    Route("/console/alerts/{rule_id}/delete", delete_rule, methods=["POST"]),
]
