"""Console pages around the compose loop: templates, maintenance, reports, users, audit log."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from broadcaster.crisis.report import duration, load_report, to_markdown
from broadcaster.domain import audit
from broadcaster.domain import incident_templates as template_store
from broadcaster.domain import users as user_store
from broadcaster.errors import InputError
from broadcaster.i18n import pgettext
from broadcaster.models import Impact, IncidentStatus, Role
from broadcaster.schemas import validate
from status_page.auth import check_csrf, require_role, user_actor
from status_page.console._kit import commander, page, text
from status_page.http import runtime


def template_body(form: FormData) -> dict[str, Any]:
    """The template form as ``TemplateIn`` data."""
    minutes = text(form, "next_update_in_minutes")
    questions = [q.strip() if isinstance(q, str) else "" for q in form.getlist("answer_question")]
    answers = [a.strip() if isinstance(a, str) else "" for a in form.getlist("answer_answer")]
    return {
        "name": text(form, "name"),
        "crisis_type": text(form, "crisis_type") or None,
        "title": text(form, "title"),
        "status": text(form, "status") or "investigating",
        "impact": text(form, "impact") or None,
        "message": text(form, "message"),
        "next_update_in_minutes": int(minutes) if minutes.isdigit() else None,
        "agent": {
            "talking_points": text(form, "talking_points"),
            "do_not_say": text(form, "do_not_say"),
            "escalation": text(form, "escalation"),
            "approved_answers": [
                {"question": q, "answer": a} for q, a in zip(questions, answers, strict=False) if q or a
            ],
        },
    }


BLANK_TEMPLATE: dict[str, Any] = {
    "name": "",
    "crisis_type": "",
    "title": "",
    "status": "investigating",
    "impact": "",
    "message": "",
    "next_update_in_minutes": 30,
    "agent": {"talking_points": "", "approved_answers": [], "do_not_say": "", "escalation": ""},
}


def _template_context(editing: dict[str, Any] | None = None) -> dict[str, Any]:
    values = {**BLANK_TEMPLATE, **(editing or {})}
    values["agent"] = {**BLANK_TEMPLATE["agent"], **(values.get("agent") or {})}
    return {
        "statuses": [s.value for s in IncidentStatus],
        "form_values": values,
        "impacts": [i.value for i in Impact if i is not Impact.MAINTENANCE],
    }


async def templates_page(request: Request) -> Response:
    user = require_role(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        templates = await template_store.list_templates(conn)
    return page(
        request, "console/templates.html", user, templates=templates, editing=None, errors={}, **_template_context()
    )


async def template_edit_page(request: Request) -> Response:
    user = require_role(request, Role.COMMANDER)
    async with runtime(request).engine.connect() as conn:
        template = await template_store.get_template(conn, request.path_params["template_id"])
        templates = await template_store.list_templates(conn)
    return page(
        request,
        "console/templates.html",
        user,
        templates=templates,
        editing=template,
        errors={},
        **_template_context(template),
    )


async def save_template(request: Request) -> Response:
    """Create (no id) or replace a template."""
    user = await commander(request)
    rt = runtime(request)
    template_id = request.path_params.get("template_id")
    form = await request.form()
    data = validate(template_store.TemplateIn, template_body(form))
    async with rt.engine.begin() as conn:
        if template_id:
            row = await template_store.update_template(conn, template_id, data)
        else:
            row = await template_store.create_template(conn, data)
        await audit.record(
            conn,
            str(user_actor(user)),
            "template.update" if template_id else "template.create",
            target=row["id"],
            name=row["name"],
        )
    return RedirectResponse("/console/templates", status_code=303)


async def delete_template(request: Request) -> Response:
    user = await commander(request)
    template_id = request.path_params["template_id"]
    async with runtime(request).engine.begin() as conn:
        row = await template_store.get_template(conn, template_id)
        await template_store.delete_template(conn, template_id)
        await audit.record(conn, str(user_actor(user)), "template.delete", target=template_id, name=row["name"])
    return RedirectResponse("/console/templates", status_code=303)


async def report_page(request: Request) -> Response:
    user = require_role(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        report = await load_report(conn, request.path_params["incident_id"])
    return page(request, "console/report.html", user, report=report, duration=duration)


async def report_markdown(request: Request) -> Response:
    user = require_role(request, Role.VIEWER)
    incident_id = request.path_params["incident_id"]
    async with runtime(request).engine.begin() as conn:
        report = await load_report(conn, incident_id)
        await audit.record(conn, str(user_actor(user)), "report.download", target=incident_id)
    return Response(
        to_markdown(report),
        media_type="text/markdown; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="incident-{incident_id}-report.md"',
            "Cache-Control": "no-store",
        },
    )


AUDIT_PAGE_SIZE = 100


def role_label(role: str) -> str:
    """A console role's name in the reader's language (the English is the role itself)."""
    names = {
        Role.ADMIN.value: pgettext("role", "admin"),
        Role.COMMANDER.value: pgettext("role", "commander"),
        Role.AGENT.value: pgettext("role", "agent"),
        Role.VIEWER.value: pgettext("role", "viewer"),
    }
    return names.get(role, role)


async def audit_page(request: Request) -> Response:
    """The audit log, newest first, ``AUDIT_PAGE_SIZE`` at a time (``?before=`` an entry id: older ones)."""
    user = require_role(request, Role.ADMIN)
    raw = request.query_params.get("before")
    if raw is not None and not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= audit.MAX_ID):
        raise InputError("invalid before", {"before": "must be an audit entry id"})
    before = int(raw) if raw is not None else None
    async with runtime(request).engine.connect() as conn:
        result = await audit.recent(conn, AUDIT_PAGE_SIZE, before)
    return page(
        request,
        "console/audit.html",
        user,
        rows=result.entries,
        next_before=result.next_before,
        paged=before is not None,
    )


async def users_page(request: Request) -> Response:
    user = require_role(request, Role.ADMIN)
    async with runtime(request).engine.connect() as conn:
        rows = await user_store.list_users(conn)
    return page(
        request, "console/users.html", user, rows=rows, roles=[r.value for r in Role], role_label=role_label, errors={}
    )


async def create_user(request: Request) -> Response:
    user = require_role(request, Role.ADMIN)
    await check_csrf(request)
    form = await request.form()
    async with runtime(request).engine.begin() as conn:
        created = await user_store.create_user(
            conn,
            text(form, "username"),
            str(form.get("password") or ""),
            text(form, "role"),
            email=text(form, "email") or None,
            phone=text(form, "phone") or None,
        )
        await audit.record(conn, str(user_actor(user)), "user.create", target=created["username"], role=created["role"])
    return RedirectResponse("/console/users", status_code=303)


async def change_role(request: Request) -> Response:
    user = require_role(request, Role.ADMIN)
    await check_csrf(request)
    form = await request.form()
    role = text(form, "role")
    user_id = request.path_params["user_id"]
    if user_id == user.get("id") and role != Role.ADMIN.value:
        raise InputError("you cannot demote yourself", {"role": "ask another admin"})
    async with runtime(request).engine.begin() as conn:
        changed = await user_store.set_role(conn, user_id, role)
        await audit.record(
            conn, str(user_actor(user)), "user.role", target=changed["username"], old=changed["old_role"], new=role
        )
    return RedirectResponse("/console/users", status_code=303)


async def change_password(request: Request) -> Response:
    """Set a user's password; their sessions end (your own too: log in again with the new one)."""
    user = require_role(request, Role.ADMIN)
    await check_csrf(request)
    form = await request.form()
    user_id = request.path_params["user_id"]
    async with runtime(request).engine.begin() as conn:
        name = await user_store.set_password(conn, user_id, str(form.get("password") or ""))
        await audit.record(conn, str(user_actor(user)), "user.password", target=name)
    if user_id == user["id"]:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/console/users", status_code=303)


async def change_disabled(request: Request) -> Response:
    """Disable a user (their sessions end, they cannot log in) or enable them again."""
    user = require_role(request, Role.ADMIN)
    await check_csrf(request)
    disable = request.url.path.endswith("/disable")
    user_id = request.path_params["user_id"]
    if disable and user_id == user["id"]:
        raise InputError("you cannot disable yourself", {"user_id": "ask another admin"})
    async with runtime(request).engine.begin() as conn:
        name = await user_store.set_disabled(conn, user_id, disable)
        await audit.record(conn, str(user_actor(user)), "user.disable" if disable else "user.enable", target=name)
    return RedirectResponse("/console/users", status_code=303)


routes = [
    Route("/console/templates", templates_page, methods=["GET"]),
    Route("/console/templates", save_template, methods=["POST"]),
    Route("/console/templates/{template_id}", template_edit_page, methods=["GET"]),
    Route("/console/templates/{template_id}", save_template, methods=["POST"]),
    Route("/console/templates/{template_id}/delete", delete_template, methods=["POST"]),
    Route("/console/incidents/{incident_id}/report", report_page, methods=["GET"]),
    Route("/console/incidents/{incident_id}/report.md", report_markdown, methods=["GET"]),
    Route("/console/audit", audit_page, methods=["GET"]),
    Route("/console/users", users_page, methods=["GET"]),
    Route("/console/users", create_user, methods=["POST"]),
    Route("/console/users/{user_id}/role", change_role, methods=["POST"]),
    Route("/console/users/{user_id}/password", change_password, methods=["POST"]),
    Route("/console/users/{user_id}/disable", change_disabled, methods=["POST"]),
    Route("/console/users/{user_id}/enable", change_disabled, methods=["POST"]),
]
