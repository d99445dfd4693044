"""Console screens for crisis contacts (``/console/contacts``) and drills (``/console/drills``),
and the contacts' one-click acknowledgement (``GET/POST /ack?token=…``).

Contacts: commanders add and edit them, only admins remove them. Drills: the drill audience
(subscribers flagged ``drill``, the only ones a drill ever reaches), the drills run so far,
each drill's page as the public would see it (login required; the public page never shows
drills) and its report.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from broadcaster.crisis import contacts, drills
from broadcaster.crisis.report import duration
from broadcaster.domain import audit
from broadcaster.domain.incidents import get_incident_row
from broadcaster.domain.users import has_role
from broadcaster.errors import InputError
from broadcaster.models import Role
from broadcaster.schemas import validate
from broadcaster.security import LinkSigner
from broadcaster.views.public import incident_views
from status_page.auth import check_csrf, require_role, user_actor
from status_page.console._kit import commander, page, redirect, text
from status_page.http import HTTPError, runtime
from status_page.pages import render_page

# --- contacts -----------------------------------------------------------------------------------

BASIC_CONTACT_FIELDS = ("id", "name", "role")  # all viewers and agents see of a contact


def contact_body(form: Any) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "role": text(form, "role"),
        "email": text(form, "email") or None,
        "phone": text(form, "phone") or None,
        "groups": [g for g in text(form, "groups").replace(";", ",").split(",") if g.strip()],
    }


async def contacts_page(request: Request) -> Response:
    """Every role sees who is on call and their role; only commanders and admins their email and phone."""
    user = require_role(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        rows = await contacts.list_contacts(conn)
    if not has_role(user, Role.COMMANDER):
        rows = [{key: row[key] for key in BASIC_CONTACT_FIELDS} for row in rows]
    return page(request, "console/contacts.html", user, contacts=rows)


async def save_contact(request: Request) -> Response:
    """Create (no id) or edit a contact."""
    user = await commander(request)
    contact_id = request.path_params.get("contact_id")
    data = validate(contacts.ContactIn, contact_body(await request.form()))
    async with runtime(request).engine.begin() as conn:
        if contact_id:
            row = await contacts.update_contact(conn, contact_id, data)
        else:
            row = await contacts.create_contact(conn, data)
        await audit.record(
            conn,
            str(user_actor(user)),
            "contact.update" if contact_id else "contact.create",
            target=row["id"],
            name=row["name"],
        )
    return redirect("/console/contacts")


async def delete_contact(request: Request) -> Response:
    user = require_role(request, Role.ADMIN)
    await check_csrf(request)
    async with runtime(request).engine.begin() as conn:
        row = await contacts.delete_contact(conn, request.path_params["contact_id"])
        await audit.record(conn, str(user_actor(user)), "contact.delete", target=row["id"], name=row["name"])
    return redirect("/console/contacts")


# --- drills -------------------------------------------------------------------------------------


async def drills_page(request: Request) -> Response:
    user = require_role(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        audience = await drills.audience(conn)
        runs = await drills.list_drills(conn)
    return page(request, "console/drills.html", user, audience=audience, drills=runs)


async def add_recipient(request: Request) -> Response:
    user = await commander(request)
    rt = runtime(request)
    form = await request.form()
    channel, address = text(form, "channel"), text(form, "address")
    async with rt.engine.begin() as conn:
        row = await drills.add_to_audience(conn, channel, address, rt.settings.webhook_allow_private)
        await audit.record(
            conn, str(user_actor(user)), "drill.audience.add", target=row["id"], channel=channel, address=row["address"]
        )
    return redirect("/console/drills")


async def remove_recipient(request: Request) -> Response:
    user = await commander(request)
    async with runtime(request).engine.begin() as conn:
        row = await drills.remove_from_audience(conn, request.path_params["subscriber_id"])
        await audit.record(
            conn, str(user_actor(user)), "drill.audience.remove", target=row["id"], address=row["address"]
        )
    return redirect("/console/drills")


async def _drill(request: Request) -> dict[str, Any]:
    async with runtime(request).engine.connect() as conn:
        incident = await get_incident_row(conn, request.path_params["incident_id"])
    if not incident["drill"]:
        raise HTTPError(404, "not_found", "not a drill")
    return incident


async def drill_page(request: Request) -> Response:
    """The drill as the status page would show it, behind the login (the public page never does)."""
    user = require_role(request, Role.VIEWER)
    incident = await _drill(request)
    async with runtime(request).engine.connect() as conn:
        view = (await incident_views(conn, [incident]))[0]
    response = page(request, "console/drill_page.html", user, incident=view)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


async def drill_report(request: Request) -> Response:
    user = require_role(request, Role.VIEWER)
    incident_id = request.path_params["incident_id"]
    async with runtime(request).engine.connect() as conn:
        result = await drills.load_drill_report(conn, incident_id)
    return page(request, "console/drill_report.html", user, result=result, report=result.report, duration=duration)


# --- acknowledgement ----------------------------------------------------------------------------


def _ack_row_id(request: Request, token: str) -> str:
    signer = LinkSigner(runtime(request).settings.secret_key.get_secret_value())
    value = signer.verify(contacts.ACK_PURPOSE, token, contacts.ACK_MAX_AGE_S) if token else None
    if not isinstance(value, str):
        raise InputError("invalid link", {"token": "this acknowledgement link is invalid or expired"})
    return value


async def ack_page(request: Request) -> Response:
    """The acknowledgement link: shows whose it is and one button (mail scanners never press it)."""
    token = request.query_params.get("token", "")
    row_id = _ack_row_id(request, token)
    async with runtime(request).engine.connect() as conn:
        row = await contacts.incident_contact(conn, row_id)
        incident = await get_incident_row(conn, row["incident_id"])
    response = render_page(request, "console/ack.html", row=row, incident=incident, token=token, done=False)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def ack(request: Request) -> Response:
    """Record who acknowledged and when (the first press counts; later ones change nothing)."""
    form = await request.form() if "form" in request.headers.get("content-type", "") else None
    token = request.query_params.get("token") or (text(form, "token") if form is not None else "")
    row_id = _ack_row_id(request, token)
    async with runtime(request).engine.begin() as conn:
        row, new = await contacts.acknowledge(conn, row_id, token)
        incident = await get_incident_row(conn, row["incident_id"])
        if new:
            await audit.record(
                conn,
                f"contact:{row['name']}",
                "contact.acknowledge",
                target=row["incident_id"],
                contact_id=row["contact_id"],
                level=row["level"],
            )
    if new:
        await runtime(request).bus.publish("acknowledged", {"incident_id": row["incident_id"], "name": row["name"]})
    response = render_page(request, "console/ack.html", row=row, incident=incident, token="", done=True)
    response.headers["Cache-Control"] = "no-store"
    return response


routes: list[BaseRoute] = [
    Route("/console/contacts", contacts_page, methods=["GET"]),
    Route("/console/contacts", save_contact, methods=["POST"]),
    Route("/console/contacts/{contact_id}", save_contact, methods=["POST"]),
    Route("/console/contacts/{contact_id}/delete", delete_contact, methods=["POST"]),
    Route("/console/drills", drills_page, methods=["GET"]),
    Route("/console/drills/audience", add_recipient, methods=["POST"]),
    Route("/console/drills/audience/{subscriber_id}/delete", remove_recipient, methods=["POST"]),
    Route("/console/drills/{incident_id}/page", drill_page, methods=["GET"]),
    Route("/console/drills/{incident_id}/report", drill_report, methods=["GET"]),
    Route("/ack", ack_page, methods=["GET"]),
    Route("/ack", ack, methods=["POST"]),
]
