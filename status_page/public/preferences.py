"""A subscriber's own links: ``/unsubscribe`` (RFC 8058 one-click) and ``/subscriptions/manage``.

Both are reached through signed links the fan-out puts in every message
(``broadcaster.delivery.fanout.recipient_links``); the token is the proof, so there is no login
and no CSRF token beyond it.

- ``GET /unsubscribe?token=…`` shows a one-button form; it never unsubscribes by itself,
  because mail scanners follow links.
- ``POST /unsubscribe?token=…`` unsubscribes at once, whatever the body (mail providers
  send ``List-Unsubscribe=One-Click``), and is idempotent: always 200 for a valid token.
- ``GET/POST /subscriptions/manage?token=…`` chooses components and the language,
  unsubscribes, or subscribes again (the link reached the owner, so no new opt-in is needed).

These pages speak the subscriber's language unless ``?lang=`` asks for another.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster import i18n
from broadcaster.delivery.fanout import UNSUBSCRIBE_MAX_AGE_S, recipient_links
from broadcaster.domain.signups import confirm_subscription
from broadcaster.domain.subscribers import (
    get_subscriber,
    set_components,
    set_language,
    subscriber_language,
    unsubscribe,
)
from broadcaster.errors import InputError, NotFound
from broadcaster.i18n import N_, gettext
from broadcaster.security import LinkSigner
from status_page.http import HTTPError, runtime
from status_page.pages import render_page
from status_page.public.signup_requests import component_choices, read_input, wants_json
from status_page.public.subscribe import for_people, message_page, own_language, speaking

Row = dict[str, Any]


def _signer(request: Request) -> LinkSigner:
    return LinkSigner(runtime(request).settings.secret_key.get_secret_value())


async def _subscriber_for(request: Request, purpose: str, token: str) -> Row | None:
    """The subscriber a valid ``purpose`` token names, or None."""
    subscriber_id = _signer(request).verify(purpose, token, UNSUBSCRIBE_MAX_AGE_S)
    if not isinstance(subscriber_id, str):
        return None
    async with runtime(request).engine.connect() as conn:
        try:
            return await get_subscriber(conn, subscriber_id)
        except NotFound:
            return None


def _invalid_link(request: Request) -> Response:
    if wants_json(request):
        raise HTTPError(400, "invalid_token", "this link is invalid or expired", {"token": "invalid or expired"})
    return message_page(
        request,
        gettext("This link does not work"),
        gettext("The link is invalid or too old. Use the link in a more recent message."),
        400,
    )


def _state(row: Row) -> str:
    if row["unsubscribed_at"] is not None:
        return "unsubscribed"
    if row["suppressed_reason"] is not None:
        return "suppressed"
    return "active" if row["confirmed"] else "unconfirmed"


# --- one-click unsubscribe ----------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    row = await _subscriber_for(request, "unsubscribe", token)
    if row is None:
        return _invalid_link(request)
    with i18n.using(own_language(request, row)) as language:
        page = render_page(
            request, "subscribe/unsubscribe.html", address=row["address"], token=token, done=False, manage_url=""
        )
    return speaking(page, language)


async def unsubscribe_now(request: Request) -> Response:
    token = request.query_params.get("token", "")
    if not token:
        form = await read_input(request)
        token = str(form.get("token") or "")
    row = await _subscriber_for(request, "unsubscribe", token)
    if row is None:
        return _invalid_link(request)
    async with runtime(request).engine.begin() as conn:
        await unsubscribe(conn, row["id"])
    if wants_json(request):
        return JSONResponse({"status": "unsubscribed", "address": row["address"]})
    rt = runtime(request)
    _, manage_url = recipient_links(rt.settings, _signer(request), row["id"])
    with i18n.using(own_language(request, row)) as language:
        page = render_page(
            request, "subscribe/unsubscribe.html", address=row["address"], token=token, done=True, manage_url=manage_url
        )
    return speaking(page, language)


# --- preferences ----------------------------------------------------------------------------------


async def _manage_page(
    request: Request,
    row: Row,
    token: str,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    if wants_json(request):
        if errors:
            raise InputError("invalid input", errors)
        return JSONResponse(
            {
                "address": row["address"],
                "channel": row["channel"],
                "state": _state(row),
                "components": row["components"],
                "language": row.get("language"),
            },
            status_code=status_code,
        )
    settings = runtime(request).settings
    components = await component_choices(runtime(request))
    with i18n.using(own_language(request, row)) as language:
        page = render_page(
            request,
            "subscribe/manage.html",
            status_code=status_code,
            subscriber=row,
            state=_state(row),
            components=components,
            selected=row["components"],
            chosen_language=i18n.best_match([row.get("language")], settings.languages) or settings.default_language,
            token=token,
            notice=gettext(notice) if notice else None,  # the notice is English here: said in the page's language
            errors={field: for_people(reason, field) for field, reason in (errors or {}).items()},
        )
    return speaking(page, language)


async def manage_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    row = await _subscriber_for(request, "manage", token)
    if row is None:
        return _invalid_link(request)
    return await _manage_page(request, row, token)


async def _apply(
    conn: AsyncConnection, row: Row, action: str, components: list[str], language: str | None, keep_language: bool
) -> str:
    """Do ``action``; the notice to show (English, a msgid)."""
    if action == "unsubscribe":
        await unsubscribe(conn, row["id"])
        return N_("You are unsubscribed: no more updates.")
    if action == "resubscribe":
        await confirm_subscription(conn, row["id"])
        return N_("You are subscribed again.")
    if action == "save":
        await set_components(conn, row["id"], components)
        if not keep_language:
            await set_language(conn, row["id"], language)
        return N_("Saved.")
    raise InputError("unknown action", {"action": "must be save, unsubscribe or resubscribe"})


async def manage_update(request: Request) -> Response:
    data = await read_input(request)
    token = str(data.get("token") or request.query_params.get("token", ""))
    row = await _subscriber_for(request, "manage", token)
    if row is None:
        return _invalid_link(request)
    components = data.get("components") or []
    if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
        raise InputError("invalid components", {"components": "expected a list of component ids"})
    rt = runtime(request)
    try:
        language = subscriber_language(data.get("language"), rt.settings.languages)
        async with rt.engine.begin() as conn:
            action = str(data.get("action") or "save")
            keep = "language" not in data  # a client that does not send it keeps the language
            notice = await _apply(conn, row, action, list(dict.fromkeys(components)), language, keep)
            row = await get_subscriber(conn, row["id"])
    except InputError as exc:
        errors = {k.split(".")[0]: v for k, v in exc.fields.items()}
        return await _manage_page(request, row, token, errors=errors, status_code=exc.status_code)
    return await _manage_page(request, row, token, notice=notice)


routes = [
    Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
    Route("/unsubscribe", unsubscribe_now, methods=["POST"]),
    Route("/subscriptions/manage", manage_page, methods=["GET"]),
    Route("/subscriptions/manage", manage_update, methods=["POST"]),
]
