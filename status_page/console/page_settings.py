"""The console's page settings (``/console/page``): the brand, and how to reach us now.

The contact channels flip in one click (a button per state, commander role); the whole list
is edited below them, with an opt-in to tell subscribers. The brand form (admin role) takes
the logo and favicon as file uploads. Both go through the same functions as the API
(``status_page.api.page``), so a change is checked, audited and published the same way.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from broadcaster.brand_checks import Image
from broadcaster.domain import contact_channels, page_brand
from broadcaster.domain.contact_channels import MAX_CHANNELS, ContactChannelsIn
from broadcaster.domain.page_brand import MAX_FAVICON_BYTES, MAX_LINKS, MAX_LOGO_BYTES, BrandPatch
from broadcaster.errors import InputError
from broadcaster.i18n import N_, gettext
from broadcaster.models import ContactState, Role
from broadcaster.schemas import validate
from status_page.api.page import PAGE_BODY_MAX_BYTES, post_contact_channels, save
from status_page.auth import check_csrf, require_role, user_actor
from status_page.console._kit import commander, page, redirect, text, viewer, whole_number
from status_page.http import runtime

UPLOAD_MAX_BYTES = PAGE_BODY_MAX_BYTES  # the body limit of BRAND_PATH (status_page/app.py)
BRAND_PATH = "/console/page/brand"
CONTACT_STATES: dict[str, str] = {
    ContactState.OPEN.value: N_("Open"),
    ContactState.BUSY.value: N_("Busy"),
    ContactState.CLOSED.value: N_("Closed"),
}


def contact_state(state: str) -> str:
    """A contact channel's state in the reader's language (``busy`` -> "Busy")."""
    known = CONTACT_STATES.get(state)
    return gettext(known) if known else state.capitalize()


async def _render(request: Request, user: dict[str, Any], errors: dict[str, str], status_code: int = 200) -> Response:
    async with runtime(request).engine.connect() as conn:
        brand = await page_brand.load_brand(conn)
        channels = await contact_channels.load_channels(conn)
    return page(
        request,
        "console/page_settings.html",
        user,
        status_code=status_code,
        brand=brand,
        channels=channels,
        states=[s.value for s in ContactState],
        contact_state=contact_state,
        max_channels=MAX_CHANNELS,
        max_links=MAX_LINKS,
        max_logo_kb=MAX_LOGO_BYTES // 1024,
        max_favicon_kb=MAX_FAVICON_BYTES // 1024,
        errors=errors,
        notice=request.query_params.get("notice"),
    )


async def settings_page(request: Request) -> Response:
    return await _render(request, viewer(request), {})


def _rows(form: FormData) -> list[dict[str, Any]]:
    names, states = form.getlist("name"), form.getlist("state")
    notes, urls = form.getlist("note"), form.getlist("url")
    rows = []
    for name, state, note, url in zip(names, states, notes, urls, strict=False):
        if isinstance(name, str) and name.strip():
            rows.append({"name": name, "state": state, "note": note, "url": url or None})
    return rows


async def _post_channels(request: Request, user: dict[str, Any], body: dict[str, Any]) -> Response:
    try:
        data = validate(ContactChannelsIn, body)
        await post_contact_channels(runtime(request), data, user_actor(user))
    except InputError as exc:
        return await _render(request, user, exc.fields or {"channels": exc.message}, status_code=422)
    return redirect("/console/page?notice=contact")


async def save_channels(request: Request) -> Response:
    """The whole list as edited (empty name rows dropped), with the notify opt-in."""
    user = await commander(request)
    form = await request.form()
    body = {"channels": _rows(form), "notify": text(form, "notify") == "1", "message": text(form, "message") or None}
    return await _post_channels(request, user, body)


async def flip_channel(request: Request) -> Response:
    """One click: channel ``index`` to ``state``, the others as they are, nobody notified."""
    user = await commander(request)
    form = await request.form()
    index = whole_number(text(form, "index"), "index")
    async with runtime(request).engine.connect() as conn:
        channels = [contact_channels.as_json(c) for c in await contact_channels.load_channels(conn)]
    if index >= len(channels):
        return await _render(request, user, {"index": gettext("no such channel")}, status_code=422)
    channels[index]["state"] = text(form, "state")
    return await _post_channels(request, user, {"channels": channels})


async def _image_field(form: FormData, name: str) -> str | None:
    """The uploaded file as a data: URL; None when no file was chosen."""
    upload = form.get(name)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    body = await upload.read()
    kind = "image/png" if body.startswith(b"\x89PNG") else "image/svg+xml"
    return Image(kind, body).data_url


async def save_brand(request: Request) -> Response:
    user = require_role(request, Role.ADMIN)
    await check_csrf(request)
    form = await request.form()
    labels, urls = form.getlist("link_label"), form.getlist("link_url")
    body: dict[str, Any] = {
        "name": text(form, "name") or None,
        "description": text(form, "description") or None,
        "accent_color": text(form, "accent_color") or None,
        "links": [
            {"label": label, "url": url}
            for label, url in zip(labels, urls, strict=False)
            if isinstance(label, str) and isinstance(url, str) and (label.strip() or url.strip())
        ],
        "custom_css": form.get("custom_css") if isinstance(form.get("custom_css"), str) else "",
    }
    for which in ("logo", "favicon"):
        uploaded = await _image_field(form, which)
        if uploaded is not None:
            body[which] = uploaded
        elif text(form, f"remove_{which}") == "1":
            body[which] = None
    try:
        await save(runtime(request), validate(BrandPatch, body), user_actor(user))
    except InputError as exc:
        return await _render(request, user, exc.fields or {"brand": exc.message}, status_code=422)
    return redirect("/console/page?notice=brand")


routes: list[BaseRoute] = [
    Route("/console/page", settings_page, methods=["GET"]),
    Route(BRAND_PATH, save_brand, methods=["POST"]),
    Route("/console/page/contact", save_channels, methods=["POST"]),
    Route("/console/page/contact/flip", flip_channel, methods=["POST"]),
]
