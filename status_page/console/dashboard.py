"""The incident commander console (``/console``): dashboard, compose with live previews, send,
component changes. Delivery and consistency views live in ``deliveries``, admin pages in ``admin``.

Every page needs a logged-in user (viewer and up); every POST needs the commander role and
the session's CSRF token, and writes an audit row.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from broadcaster import i18n, posting
from broadcaster.alerts import drafts as alert_drafts
from broadcaster.delivery.channel import Rendition
from broadcaster.domain import audit
from broadcaster.domain import components as component_store
from broadcaster.domain import incident_templates as template_store
from broadcaster.domain import incidents as incident_store
from broadcaster.errors import InputError
from broadcaster.models import (
    CLOSED_STATUSES,
    ChannelKind,
    ComponentStatus,
    Impact,
    IncidentStatus,
    MaintenanceStatus,
    Role,
)
from broadcaster.post_requests import ComponentNotice
from status_page.auth import require_role, user_actor
from status_page.console._kit import commander, late, page
from status_page.console.compose_form import (
    MAINTENANCE_DEFAULTS,
    compose_body,
    compose_request,
    preview_matches,
    sign_preview,
    translation_languages,
)
from status_page.http import HTTPError, runtime
from status_page.pages import render_page

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
SSE_LIFETIME_S = 300.0
SSE_REFRESH_S = 5.0


def _late(incident: dict[str, Any]) -> bool:
    return late(incident)


# --- dashboard ----------------------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    user = require_role(request, Role.VIEWER)
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        components = await component_store.list_components(conn)
        open_incidents = await incident_store.list_incidents(
            conn,
            statuses=[s.value for s in IncidentStatus if s.value not in CLOSED_STATUSES]
            + [
                MaintenanceStatus.SCHEDULED.value,
                MaintenanceStatus.IN_PROGRESS.value,
                MaintenanceStatus.VERIFYING.value,
            ],
            limit=100,
            include_drills=True,
        )
        recent = await incident_store.list_incidents(
            conn, statuses=list(CLOSED_STATUSES), limit=10, include_drills=True
        )
        drafts_pending = await alert_drafts.list_drafts(conn)
    groups = {c["id"]: c["name"] for c in components if c["is_group"]}
    late = [i for i in open_incidents if _late(i)]
    return page(
        request,
        "console/dashboard.html",
        user,
        components=[c for c in components if not c["is_group"]],
        groups=groups,
        incidents=open_incidents,
        recent=recent,
        late=late,
        component_statuses=[s.value for s in ComponentStatus],
        is_late=_late,
        drafts_pending=drafts_pending,
    )


# --- compose, preview, send ---------------------------------------------------------------------


async def _compose_context(request: Request, form_values: dict[str, Any]) -> dict[str, Any]:
    rt = runtime(request)
    incident = None
    async with rt.engine.connect() as conn:
        components = [c for c in await component_store.list_components(conn) if not c["is_group"]]
        templates = await template_store.list_templates(conn)
        if form_values.get("incident_id"):
            incident = await incident_store.get_incident_row(conn, form_values["incident_id"])
    kind = incident["kind"] if incident else form_values.get("kind", "incident")
    statuses = [s.value for s in (MaintenanceStatus if kind == "maintenance" else IncidentStatus)]
    channels = [(name, type(channel).title) for name, channel in rt.registry.enabled.items()]
    return {
        "incident": incident,
        "kind": kind,
        "components": components,
        "templates": templates,
        "statuses": statuses,
        "impacts": [i.value for i in Impact if i is not Impact.MAINTENANCE],
        "component_statuses": [s.value for s in ComponentStatus],
        "channels": channels,
        "translation_languages": translation_languages(rt.settings),
    }


def _defaults(query: dict[str, str], template: dict[str, Any] | None, enabled: list[str]) -> dict[str, Any]:
    """Form values for a fresh compose screen: from a template, or from the query string."""
    values: dict[str, Any] = {
        "incident_id": query.get("incident_id", ""),
        "kind": query.get("kind", "incident"),
        "title": "",
        "status": query.get("status", ""),
        "impact": "",
        "message": query.get("message", ""),
        "components": {},
        "channels": enabled,
        "next_update_in_minutes": "30",
        "agent": {"talking_points": "", "do_not_say": "", "escalation": "", "approved_answers": []},
        "template_id": "",
        "scheduled_for": "",
        "scheduled_until": "",
        "translations": {},
        **MAINTENANCE_DEFAULTS,
    }
    if values["kind"] == "maintenance":
        values["next_update_in_minutes"] = ""
    if template:
        values.update(
            title=template["title"],
            status=template["status"],
            impact=template["impact"] or "",
            message=template["message"],
            template_id=template["id"],
            next_update_in_minutes=str(template["next_update_in_minutes"] or ""),
            channels=[c for c in (template["channels"] or enabled) if c in enabled],
        )
        values["agent"] = {**values["agent"], **(template["agent"] or {})}
    return values


def _values_from_body(body: dict[str, Any], raw: dict[str, str]) -> dict[str, Any]:
    """Form values to re-display what was posted."""
    agent = body.get("agent") or {}
    return {
        "incident_id": body.get("incident_id", ""),
        "kind": body.get("kind", "incident"),
        "title": body.get("title", ""),
        "status": body["status"],
        "impact": body.get("impact", ""),
        "message": body["message"],
        "components": body["components"],
        "channels": body.get("channels", []),
        "next_update_in_minutes": raw.get("next_update_in_minutes", ""),
        "agent": {
            "talking_points": agent.get("talking_points", ""),
            "do_not_say": agent.get("do_not_say", ""),
            "escalation": agent.get("escalation", ""),
            "approved_answers": agent.get("approved_answers", []),
        },
        "template_id": body.get("template_id", ""),
        "scheduled_for": raw.get("scheduled_for", ""),
        "scheduled_until": raw.get("scheduled_until", ""),
        **{name: raw.get(name, "") for name in MAINTENANCE_DEFAULTS},
        "auto_transition": body.get("auto_transition", True),
        "translations": body.get("translations", {}),
    }


async def compose_page(request: Request) -> Response:
    user = require_role(request, Role.COMMANDER)
    rt = runtime(request)
    query = dict(request.query_params)
    template = None
    if query.get("template"):
        async with rt.engine.connect() as conn:
            template = await template_store.get_template(conn, query["template"])
    values = _defaults(query, template, list(rt.registry.enabled))
    context = await _compose_context(request, values)
    if not values["status"]:
        values["status"] = context["statuses"][0]
    return page(
        request,
        "console/compose.html",
        user,
        values=values,
        previews=None,
        translated={},
        preview_token="",
        errors={},
        notice=None,
        **context,
    )


Previews = dict[str, dict[str, Rendition]]


async def _render_previews(request: Request, user: dict[str, Any], body: dict[str, Any]) -> tuple[Previews, Previews]:
    """What the send would render, from the post's own dry run (``posting.preview_languages``): every
    channel in the default language, then per language the update is translated into, the channels
    that reach its readers (subscribers; a broadcast channel only in its own language)."""
    rt = runtime(request)
    settings = rt.settings
    wanted = {i18n.normalize(code) for code in body.get("translations") or {}}
    languages = [settings.default_language, *(c for c in translation_languages(settings) if c in wanted)]
    by_language = await posting.preview_languages(
        rt, compose_request(body), actor=user_actor(user), languages=languages
    )
    default = by_language.pop(settings.default_language, {})
    translated = {
        language: {
            name: rendition
            for name, rendition in renditions.items()
            if rt.registry.enabled[name].kind is not ChannelKind.BROADCAST
            or settings.channel_languages.get(name) == language
        }
        for language, renditions in by_language.items()
    }
    return default, translated


async def preview_json(request: Request) -> Response:
    """The live preview: every channel's rendition, an HTML view of them, and the send token."""
    user = await commander(request)
    form = await request.form()
    try:
        body = compose_body(form)
        previews, translated = await _render_previews(request, user, body)
    except InputError as exc:
        return JSONResponse(
            {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}, "token": ""},
            status_code=exc.status_code,
        )
    fragment = render_page(request, "console/_previews.html", previews=previews, translated=translated)
    return JSONResponse(
        {
            "token": sign_preview(runtime(request).settings, body, user["username"]),
            "renditions": previews,
            "translations": translated,
            "html": bytes(fragment.body).decode(),
        }
    )


async def _recompose(
    request: Request,
    user: dict[str, Any],
    body: dict[str, Any],
    raw: dict[str, str],
    status_code: int,
    notice: str | None,
    errors: dict[str, str] | None = None,
) -> Response:
    """The compose page again with the posted values, fresh previews and a token for them."""
    values = _values_from_body(body, raw)
    context = await _compose_context(request, values)
    previews: Previews | None = None
    translated: Previews = {}
    token = ""
    if not errors:
        try:
            previews, translated = await _render_previews(request, user, body)
            token = sign_preview(runtime(request).settings, body, user["username"])
        except InputError as exc:
            errors = exc.fields or {"form": exc.message}
    return page(
        request,
        "console/compose.html",
        user,
        status_code=status_code,
        values=values,
        previews=previews,
        translated=translated,
        preview_token=token,
        errors=errors or {},
        notice=notice,
        **context,
    )


async def compose_preview(request: Request) -> Response:
    """Without JavaScript: the Preview button posts here and gets the page back with previews."""
    user = await commander(request)
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str)}
    return await _recompose(request, user, compose_body(form), raw, 200, None)


async def send(request: Request) -> Response:
    """Record and fan out the previewed update; 409 unless the preview token matches the content."""
    user = await commander(request)
    rt = runtime(request)
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str)}
    body = compose_body(form)
    if not preview_matches(rt.settings, body, user["username"], raw.get("preview_token", "")):
        async with rt.engine.begin() as conn:
            await audit.record(
                conn,
                str(user_actor(user)),
                "send_refused",
                target=body.get("incident_id"),
                reason="preview token does not match the content",
            )
        return await _recompose(
            request,
            user,
            body,
            raw,
            409,
            i18n.gettext("What you are sending differs from the last preview. Check the preview below and send again."),
        )
    # A double-submitted send (same previewed content, same preview token) records one update.
    key = raw.get("idempotency_key") or hashlib.sha256(raw["preview_token"].encode()).hexdigest()
    try:
        result = await posting.post(rt, compose_request(body), actor=user_actor(user), idempotency_key=key)
    except InputError as exc:
        return await _recompose(
            request, user, body, raw, exc.status_code, exc.message, exc.fields or {"form": exc.message}
        )
    assert result.ref is not None
    return RedirectResponse(f"/console/updates/{result.ref['update_id']}", status_code=303)


# --- components ---------------------------------------------------------------------------------


async def component_status(request: Request) -> Response:
    """Change one component's status; with "notify", as a short incident update of its own."""
    user = await commander(request)
    rt = runtime(request)
    component_id = request.path_params["component_id"]
    form = await request.form()
    status = str(form.get("status") or "")
    notify = form.get("notify") in ("1", "on", "true")
    note = str(form.get("message") or "").strip()
    if status not in {s.value for s in ComponentStatus}:
        raise InputError("invalid status", {"status": "must be a component status"})
    notice = ComponentNotice(component_id, ComponentStatus(status), notify=notify, note=note)
    posted = (await posting.post(rt, notice, actor=user_actor(user))).posted
    if posted is None:
        return RedirectResponse("/console", status_code=303)
    return RedirectResponse(f"/console/updates/{posted.update_id}", status_code=303)


# --- static assets ------------------------------------------------------------------------------


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    path = STATIC_DIR / name
    if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
        raise HTTPError(404, "not_found", "no such asset")
    return Response(
        path.read_bytes(),
        media_type=STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


routes = [
    Route("/console", dashboard, methods=["GET"]),
    Route("/console/compose", compose_page, methods=["GET"]),
    Route("/console/compose", compose_preview, methods=["POST"]),
    Route("/console/preview", preview_json, methods=["POST"]),
    Route("/console/send", send, methods=["POST"]),
    Route("/console/components/{component_id}/status", component_status, methods=["POST"]),
    Route("/console/static/{name}", static, methods=["GET"]),
]
