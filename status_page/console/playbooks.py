"""Console screens for crisis playbooks (``/console/playbooks``): levels, their contact lists,
opening an incident (or a drill) from a level, acknowledgements and escalation, YAML download
and upload. Contacts, drills and the acknowledgement link live in ``console_drills``.

Every page needs a logged-in user; every change needs the commander role and the session's
CSRF token, and writes an audit row.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from broadcaster import posting
from broadcaster.crisis import contacts, playbook_yaml, playbooks
from broadcaster.domain import audit
from broadcaster.domain import incidents as incident_store
from broadcaster.errors import InputError
from broadcaster.i18n import N_, gettext
from broadcaster.jobs import page_copies
from broadcaster.models import CLOSED_STATUSES, Impact, IncidentStatus, Role
from broadcaster.post_requests import PlaybookOpening
from broadcaster.schemas import validate
from status_page.auth import require_role, user_actor
from status_page.console._kit import commander, page, redirect, text, viewer, whole_number
from status_page.http import runtime

MAX_UPLOAD_BYTES = 1024 * 1024
CRISIS_TYPES: dict[str, str] = {
    playbooks.CrisisType.OUTAGE.value: N_("Outage"),
    playbooks.CrisisType.SECURITY_BREACH.value: N_("Security breach"),
    playbooks.CrisisType.PRODUCT_RECALL.value: N_("Product recall"),
    playbooks.CrisisType.NATURAL_DISASTER.value: N_("Natural disaster"),
    playbooks.CrisisType.SUPPLY_DISRUPTION.value: N_("Supply disruption"),
    playbooks.CrisisType.PR_INCIDENT.value: N_("PR incident"),
    playbooks.CrisisType.CUSTOM.value: N_("Custom"),
}


def crisis_label(crisis_type: str) -> str:
    """A crisis type in the reader's language (``product_recall`` -> "Product recall")."""
    known = CRISIS_TYPES.get(crisis_type)
    return gettext(known) if known else crisis_type.replace("_", " ").capitalize()


def level_body(form: FormData) -> dict[str, Any]:
    """The level form as ``LevelIn`` data."""
    questions = [q.strip() if isinstance(q, str) else "" for q in form.getlist("answer_question")]
    answers = [a.strip() if isinstance(a, str) else "" for a in form.getlist("answer_answer")]
    cadence = text(form, "cadence_minutes")
    return {
        "level": whole_number(text(form, "level"), "level"),
        "name": text(form, "name"),
        "title": text(form, "title"),
        "status": text(form, "status") or "investigating",
        "impact": text(form, "impact") or None,
        "message": text(form, "message"),
        "agent": {
            "talking_points": text(form, "talking_points"),
            "do_not_say": text(form, "do_not_say"),
            "escalation": text(form, "escalation"),
            "approved_answers": [
                {"question": q, "answer": a} for q, a in zip(questions, answers, strict=False) if q or a
            ],
        },
        "channels": [c for c in form.getlist("channels") if isinstance(c, str)],
        "cadence_minutes": whole_number(cadence, "cadence_minutes") if cadence else None,
    }


def playbook_body(form: FormData) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "crisis_type": text(form, "crisis_type") or "custom",
        "description": text(form, "description"),
    }


# --- playbooks ----------------------------------------------------------------------------------


async def list_page(request: Request) -> Response:
    user = viewer(request)
    async with runtime(request).engine.connect() as conn:
        rows = await playbooks.list_playbooks(conn)
    return page(
        request,
        "console/playbooks.html",
        user,
        playbooks=rows,
        crisis_types=[c.value for c in playbooks.CrisisType],
        crisis_label=crisis_label,
        notice=request.query_params.get("notice"),
    )


async def create(request: Request) -> Response:
    user = await commander(request)
    data = validate(playbooks.PlaybookIn, playbook_body(await request.form()))
    async with runtime(request).engine.begin() as conn:
        row = await playbooks.create_playbook(conn, data)
        await audit.record(conn, str(user_actor(user)), "playbook.create", target=row["id"], name=row["name"])
    return redirect(f"/console/playbooks/{row['id']}")


async def detail_page(request: Request) -> Response:
    user = viewer(request)
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        playbook = await playbooks.get_playbook(conn, request.path_params["playbook_id"])
        people = await contacts.list_contacts(conn)
    groups = sorted({g for c in people for g in (c["groups"] or [])})
    return page(
        request,
        "console/playbook.html",
        user,
        playbook=playbook,
        people=people,
        groups=groups,
        crisis_types=[c.value for c in playbooks.CrisisType],
        crisis_label=crisis_label,
        statuses=[s.value for s in IncidentStatus],
        impacts=[i.value for i in Impact if i is not Impact.MAINTENANCE],
        channel_names=list(rt.registry.classes),
        enabled=list(rt.registry.enabled),
    )


async def update(request: Request) -> Response:
    user = await commander(request)
    playbook_id = request.path_params["playbook_id"]
    data = validate(playbooks.PlaybookIn, playbook_body(await request.form()))
    async with runtime(request).engine.begin() as conn:
        row = await playbooks.update_playbook(conn, playbook_id, data)
        await audit.record(conn, str(user_actor(user)), "playbook.update", target=playbook_id, name=row["name"])
    return redirect(f"/console/playbooks/{playbook_id}")


async def delete(request: Request) -> Response:
    user = await commander(request)
    playbook_id = request.path_params["playbook_id"]
    async with runtime(request).engine.begin() as conn:
        row = await playbooks.delete_playbook(conn, playbook_id)
        await audit.record(conn, str(user_actor(user)), "playbook.delete", target=playbook_id, name=row["name"])
    return redirect("/console/playbooks")


async def save_level(request: Request) -> Response:
    user = await commander(request)
    playbook_id = request.path_params["playbook_id"]
    data = validate(playbooks.LevelIn, level_body(await request.form()))
    async with runtime(request).engine.begin() as conn:
        await playbooks.save_level(conn, playbook_id, data)
        await audit.record(
            conn, str(user_actor(user)), "playbook.level.save", target=playbook_id, level=data.level, name=data.name
        )
    return redirect(f"/console/playbooks/{playbook_id}#level-{data.level}")


async def delete_level(request: Request) -> Response:
    user = await commander(request)
    playbook_id, level = request.path_params["playbook_id"], int(request.path_params["level"])
    async with runtime(request).engine.begin() as conn:
        await playbooks.delete_level(conn, playbook_id, level)
        await audit.record(conn, str(user_actor(user)), "playbook.level.delete", target=playbook_id, level=level)
    return redirect(f"/console/playbooks/{playbook_id}")


async def assign(request: Request) -> Response:
    """Put a contact, or every contact of a group, on a level's list."""
    user = await commander(request)
    playbook_id, level = request.path_params["playbook_id"], int(request.path_params["level"])
    form = await request.form()
    contact_id, group = text(form, "contact_id"), text(form, "group")
    async with runtime(request).engine.begin() as conn:
        playbooks.get_level(await playbooks.get_playbook(conn, playbook_id), level)
        if contact_id:
            ids = [(await contacts.get_contact(conn, contact_id))["id"]]
        elif group:
            ids = await contacts.group_members(conn, group)
        else:
            raise InputError("choose someone", {"contact_id": "pick a contact or a group"})
        await contacts.assign(conn, ids, playbook_id, level)
        await audit.record(
            conn,
            str(user_actor(user)),
            "playbook.contacts.assign",
            target=playbook_id,
            level=level,
            contacts=ids,
            group=group or None,
        )
    return redirect(f"/console/playbooks/{playbook_id}#level-{level}")


async def unassign(request: Request) -> Response:
    user = await commander(request)
    params = request.path_params
    playbook_id, level, contact_id = params["playbook_id"], int(params["level"]), params["contact_id"]
    async with runtime(request).engine.begin() as conn:
        await contacts.unassign(conn, contact_id, playbook_id, level)
        await audit.record(
            conn,
            str(user_actor(user)),
            "playbook.contacts.remove",
            target=playbook_id,
            level=level,
            contact_id=contact_id,
        )
    return redirect(f"/console/playbooks/{playbook_id}#level-{level}")


async def open_incident(request: Request) -> Response:
    """Open an incident (or a drill) from a level; its contacts are notified at once."""
    user = await commander(request)
    rt = runtime(request)
    playbook_id = request.path_params["playbook_id"]
    form = await request.form()
    body: dict[str, Any] = {
        "level": whole_number(text(form, "level"), "level"),
        "drill": text(form, "drill") in ("1", "on"),
    }
    for key in ("title", "message"):
        if text(form, key):
            body[key] = text(form, key)
    data = validate(playbooks.OpenIn, body)
    posted = (await posting.post(rt, PlaybookOpening(playbook_id, data), actor=user_actor(user))).posted
    assert posted is not None  # an opening always records its first update
    return redirect(f"/console/playbooks/incidents/{posted.incident_id}")


# --- an incident's team -------------------------------------------------------------------------


async def incident_page(request: Request) -> Response:
    """Who has and has not acknowledged, and the escalation form."""
    user = viewer(request)
    incident_id = request.path_params["incident_id"]
    async with runtime(request).engine.connect() as conn:
        incident = await incident_store.get_incident_row(conn, incident_id)
        team = await contacts.incident_contact_rows(conn, incident_id)
        meta = incident["meta"] or {}
        playbook = await playbooks.get_playbook(conn, meta["playbook_id"]) if meta.get("playbook_id") else None
    higher = [lv for lv in (playbook["levels"] if playbook else []) if lv["level"] > int(meta.get("level") or 0)]
    return page(
        request,
        "console/playbook_incident.html",
        user,
        incident=incident,
        team=team,
        meta=meta,
        playbook=playbook,
        higher=higher,
        closed=incident["status"] in CLOSED_STATUSES,
        acknowledged=[t for t in team if t["acknowledged_at"]],
        waiting=[t for t in team if not t["acknowledged_at"]],
    )


async def raise_level(request: Request) -> Response:
    user = await commander(request)
    incident_id = request.path_params["incident_id"]
    level = whole_number(text(await request.form(), "level"), "level")
    await playbooks.raise_level(runtime(request), incident_id, level, user_actor(user))
    return redirect(f"/console/playbooks/incidents/{incident_id}")


# --- YAML ---------------------------------------------------------------------------------------


async def export_yaml(request: Request) -> Response:
    user = await _commander_get(request)
    async with runtime(request).engine.begin() as conn:
        body = await playbook_yaml.export_yaml(conn)
        await audit.record(conn, str(user_actor(user)), "playbooks.export")
    return Response(
        body,
        media_type="application/yaml; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="playbooks.yaml"', "Cache-Control": "no-store"},
    )


async def _commander_get(request: Request) -> dict[str, Any]:
    return require_role(request, Role.COMMANDER)  # the file holds contacts' phone numbers


async def import_yaml(request: Request) -> Response:
    user = await commander(request)
    form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InputError("no file", {"file": "choose a YAML file"})
    raw = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InputError("file too large", {"file": f"at most {MAX_UPLOAD_BYTES} bytes"})
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8", {"file": "must be UTF-8 text"}) from None
    async with runtime(request).engine.begin() as conn:
        counts = await playbook_yaml.import_yaml(conn, content)
        await audit.record(conn, str(user_actor(user)), "playbooks.import", filename=upload.filename, counts=counts)
    if counts["page"]:
        await page_copies.page_changed(runtime(request), "page", {"changed": "brand"})
    # the notice is read back from the query by the list page, in the language it was written in (the same reader's)
    notice = gettext(
        "Imported %(playbooks)s playbooks, %(levels)s levels, %(contacts)s contacts.",
        playbooks=counts["playbooks"],
        levels=counts["levels"],
        contacts=counts["contacts"],
    )
    return RedirectResponse(f"/console/playbooks?notice={notice.replace(' ', '+')}", status_code=303)


routes: list[BaseRoute] = [
    Route("/console/playbooks", list_page, methods=["GET"]),
    Route("/console/playbooks", create, methods=["POST"]),
    Route("/console/playbooks/export.yaml", export_yaml, methods=["GET"]),
    Route("/console/playbooks/import", import_yaml, methods=["POST"]),
    Route("/console/playbooks/incidents/{incident_id}", incident_page, methods=["GET"]),
    Route("/console/playbooks/incidents/{incident_id}/level", raise_level, methods=["POST"]),
    Route("/console/playbooks/{playbook_id}", detail_page, methods=["GET"]),
    Route("/console/playbooks/{playbook_id}", update, methods=["POST"]),
    Route("/console/playbooks/{playbook_id}/delete", delete, methods=["POST"]),
    Route("/console/playbooks/{playbook_id}/levels", save_level, methods=["POST"]),
    Route("/console/playbooks/{playbook_id}/levels/{level:int}/delete", delete_level, methods=["POST"]),
    Route("/console/playbooks/{playbook_id}/levels/{level:int}/contacts", assign, methods=["POST"]),
    Route(
        "/console/playbooks/{playbook_id}/levels/{level:int}/contacts/{contact_id}/remove", unassign, methods=["POST"]
    ),
    Route("/console/playbooks/{playbook_id}/open", open_incident, methods=["POST"]),
]
