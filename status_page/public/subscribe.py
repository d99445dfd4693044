"""Public sign-up: ``/subscribe`` (email, SMS, webhook, chat webhooks), SMS codes, email confirmation links.

``POST /subscribe`` takes a form or JSON ``{email | phone | webhook | slack | teams | discord |
google_chat, components?, language?}`` (a chat field holds that service's incoming-webhook URL;
``language`` one the page offers, default the reader's) and answers HTML to a form, JSON to
JSON (202 with ``status``); a language not offered is a 422 naming ``language``. Email and SMS sign-ups get a
confirmation (a signed link valid ``confirm_link_max_age_s``, a 6-digit code valid
``sms_code_ttl_s``) sent by the worker's ``send_confirmation`` job (inline, with a timeout,
when Redis cannot take the job). A public webhook or chat sign-up is stored unconfirmed and
waits for an admin (``POST /api/v1/subscribers`` with ``confirmed: true``); a webhook's answer
carries the signing secret once.

Abuse limits: ``status_page.public.signup_limits``. Phones must be from ``sms_countries`` when
it is set (422 naming ``phone``).

The pages speak the reader's language; the JSON answers stay English (machines read them), and
the English reasons other modules give are shown to people through ``for_people``. The pages
that answer a subscriber's own link (the confirmation) speak the subscriber's language unless
``?lang=`` asks for another.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster import i18n
from broadcaster.domain.signups import (
    CodeCheck,
    Refused,
    check_code,
    confirm_subscription,
    find_sms_subscriber,
    sign_up,
)
from broadcaster.domain.subscribers import CHAT_CHANNELS, URL_CHANNELS, normalize_phone, subscriber_language
from broadcaster.errors import DeliveryError, InputError
from broadcaster.i18n import N_, gettext
from broadcaster.jobs import confirmations
from broadcaster.runtime import Runtime
from broadcaster.security import LinkSigner
from status_page.http import HTTPError, runtime
from status_page.languages import asked_language
from status_page.pages import render_page
from status_page.public.signup_limits import check_confirmation_limits, check_limits
from status_page.public.signup_requests import client_ip, component_choices, is_json, read_input, wants_json

log = logging.getLogger(__name__)

INLINE_SEND_TIMEOUT_S = 10.0
CHANNEL_OF_FIELD = {"email": "email", "phone": "sms", "webhook": "webhook", **{name: name for name in CHAT_CHANNELS}}
ONE_OF = N_("give exactly one of email, phone, webhook or a chat webhook URL (slack, teams, discord, google_chat)")
_CODE = re.compile(r"^[0-9]{6}$")

# The English reasons (and messages) other modules give, which the JSON answers keep: marked here
# so the pages can show them in the reader's language (``for_people``).
KNOWN_REASONS = (
    N_("at most 512 characters"),
    N_("expected a list of component ids"),
    N_("not a valid number (use E.164, e.g. +14155550100)"),
    N_("must be an https URL"),
    N_("must not carry credentials"),
    N_("must not point at a private or loopback address"),
    N_("unknown component"),
    N_("must be save, unsubscribe or resubscribe"),
    N_("too long"),
    N_("invalid input"),
    N_("invalid components"),
    N_("invalid email address"),
    N_("invalid phone number"),
    N_("invalid webhook URL"),
    N_("unknown component ids"),
    N_("unknown language"),
    N_("unknown action"),
)
# What a person is told about a field when the reason itself has no translation (a library's words).
FIELD_HINTS = {
    "email": N_("Enter an email address we can write to, like name@example.com."),
    "phone": N_("Enter a mobile number in international format, like +14155550100."),
    "components": N_("Choose components from the list."),
    "language": N_("Choose one of the languages in the list."),
    "code": N_("Enter the 6-digit code from the SMS."),
}
URL_HINT = N_("Enter an https webhook URL on a public address.")
HINT = N_("Please check this and try again.")


def for_people(reason: str, field: str | None = None) -> str:
    """``reason`` (English, as the JSON answer says it) for a person reading the current language."""
    if i18n.current_language() == i18n.SOURCE_LANGUAGE:
        return reason
    translated = gettext(reason)
    if translated != reason:
        return translated
    hint = FIELD_HINTS.get(field or "") or (URL_HINT if field in CHANNEL_OF_FIELD else HINT)
    return gettext(hint)


def shown_errors(exc: InputError) -> dict[str, str]:
    """``exc``'s reasons per form field (``components.x`` → ``components``), for people."""
    if isinstance(exc, Refused):
        return dict(exc.shown)
    shown: dict[str, str] = {}
    for key, reason in exc.fields.items():
        field = key.split(".")[0]
        shown.setdefault(field, for_people(reason, field))
    return shown


def own_language(request: Request, row: dict[str, Any]) -> str:
    """The language of the pages answering a subscriber's own link: theirs, unless ``?lang=`` asks for
    another (or theirs is no longer offered: then the reader's)."""
    settings = runtime(request).settings
    if asked_language(request.scope.get("query_string") or b"", settings.languages) is not None:
        return str(request.state.language)
    return i18n.best_match([row.get("language")], settings.languages) or str(request.state.language)


def speaking(response: Response, language: str) -> Response:
    """``response`` saying it is in ``language`` (the middleware would say the reader's)."""
    response.headers["Content-Language"] = language
    return response


def message_page(
    request: Request,
    title: str,
    text: str,
    status_code: int = 200,
    link: str | None = None,
    link_text: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    response = render_page(
        request,
        "subscribe/message.html",
        status_code=status_code,
        title=title,
        text=text,
        link=link,
        link_text=link_text,
    )
    response.headers.update(headers or {})
    return response


# --- sign-up ------------------------------------------------------------------------------------


def parse_sign_up(
    rt: Runtime, data: dict[str, Any], reader: str | None = None
) -> tuple[str, str, list[str], str | None]:
    """(channel, address, component ids, language) from the body; exactly one of email/phone/webhook.

    ``language`` is the body's (an offered one, normalized), else ``reader``'s."""
    given = {
        field: str(data[field]).strip()
        for field in CHANNEL_OF_FIELD
        if isinstance(data.get(field), str) and data[field].strip()
    }
    if len(given) != 1:
        fields = {f: ONE_OF for f in (given or {"email": ""})}
        raise InputError(ONE_OF, fields)
    field, address = next(iter(given.items()))
    if len(address) > 512:
        raise InputError("too long", {field: "at most 512 characters"})
    channel = CHANNEL_OF_FIELD[field]
    if channel not in rt.registry.enabled:
        raise Refused(
            f"{channel} notifications are not available",
            {field: f"{channel} is not enabled here"},
            {field: gettext("This kind of subscription is not available here.")},
        )
    components = data.get("components") or []
    if not isinstance(components, list) or len(components) > 500 or not all(isinstance(c, str) for c in components):
        raise InputError("invalid components", {"components": "expected a list of component ids"})
    language = subscriber_language(data["language"], rt.settings.languages) if "language" in data else None
    return channel, address, list(dict.fromkeys(components)), language or reader


async def dispatch_confirmation(rt: Runtime, subscriber_id: str) -> None:
    """Queue the confirmation; send it inline (bounded) only when Redis cannot take the job."""
    if await confirmations.enqueue_confirmation(rt, subscriber_id):
        return
    try:
        await asyncio.wait_for(confirmations.send_confirmation(rt, subscriber_id), INLINE_SEND_TIMEOUT_S)
    except (DeliveryError, TimeoutError) as exc:
        log.warning("confirmation for %s not sent: %s", subscriber_id, exc)


async def stylesheet(request: Request) -> Response:
    """The subscriber pages' CSS (a file, not inline: the page's CSP forbids inline styles)."""
    path = runtime(request).settings.templates_dir / "subscribe" / "style.css"
    return Response(path.read_bytes(), media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


async def subscribe_form(request: Request) -> Response:
    return await _form(request)


async def _form(
    request: Request,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    rt = runtime(request)
    values = values or {}
    selected = values.get("components") if isinstance(values.get("components"), list) else []
    return render_page(
        request,
        "subscribe/form.html",
        status_code=status_code,
        components=await component_choices(rt),
        values={k: v for k, v in values.items() if isinstance(v, str)},
        selected=selected,
        errors=errors or {},
        message=message,
        email_enabled="email" in rt.registry.enabled,
        sms_enabled="sms" in rt.registry.enabled,
        chosen_language=values.get("language") or i18n.current_language(),
        chats=[(name, rt.registry.enabled[name].title) for name in CHAT_CHANNELS if name in rt.registry.enabled],
    )


async def subscribe(request: Request) -> Response:
    rt = runtime(request)
    as_json = is_json(request)
    data = await read_input(request)
    try:
        channel, address, components, language = parse_sign_up(rt, data, str(request.state.language))
        address = await check_limits(rt, channel, address, client_ip(request))
        async with rt.engine.begin() as conn:  # a refused confirmation rolls the sign-up back
            result = await sign_up(
                conn,
                channel,
                address,
                components,
                allow_private_webhooks=rt.settings.webhook_allow_private,
                language=language,
                languages=rt.settings.languages,
            )
            if result.needs_confirmation:
                await check_confirmation_limits(rt, channel, result.subscriber["address"])
    except InputError as exc:
        if as_json:
            raise
        return await _form(request, data, shown_errors(exc), for_people(exc.message), exc.status_code)
    except HTTPError as exc:
        if as_json or exc.status_code not in (429, 503):
            raise
        return message_page(request, gettext("Please wait"), wait_text(exc), exc.status_code, headers=exc.headers)
    subscriber = result.subscriber
    answer: dict[str, Any] = {"channel": channel, "address": subscriber["address"]}
    if result.needs_confirmation:
        await dispatch_confirmation(rt, subscriber["id"])
    if channel in URL_CHANNELS:
        body = {
            **answer,
            "status": "pending_approval",
            "message": "stored; an administrator confirms webhook subscriptions",
        }
        if channel == "webhook" and result.created:
            body["secret"] = subscriber["secret"]  # shown once, to verify our signatures
        if as_json:
            return JSONResponse(body, status_code=202)
        return message_page(
            request,
            gettext("Webhook registered"),
            gettext("An administrator will confirm this webhook before it receives updates."),
            202,
        )
    if channel == "sms":
        if as_json:
            return JSONResponse(
                {
                    **answer,
                    "status": "code_sent",
                    "message": "send the 6-digit code: POST /subscribe/confirm {phone, code}",
                },
                status_code=202,
            )
        return render_page(
            request, "subscribe/enter_code.html", status_code=202, phone=subscriber["address"], error=None
        )
    if as_json:
        return JSONResponse(
            {**answer, "status": "confirmation_sent", "message": "open the link we emailed to confirm"}, status_code=202
        )
    return render_page(request, "subscribe/check_email.html", status_code=202, address=subscriber["address"])


def wait_text(exc: HTTPError) -> str:
    """A 429 or 503 of the sign-up, for people."""
    if i18n.current_language() == i18n.SOURCE_LANGUAGE:
        return exc.message
    if exc.status_code == 503:
        return gettext("Signing up by SMS is not possible right now; please try again later.")
    seconds = (exc.headers or {}).get("Retry-After", "60")
    return gettext("Too many sign-ups just now; please try again in %(seconds)s seconds.", seconds=seconds)


# --- confirming ---------------------------------------------------------------------------------

CODE_ERRORS = {
    CodeCheck.WRONG: (422, "wrong_code", N_("that code is not right; check the SMS and try again")),
    CodeCheck.EXPIRED: (422, "code_expired", N_("this code expired or was never sent; sign up again")),
    CodeCheck.EXHAUSTED: (429, "too_many_attempts", N_("too many wrong codes; sign up again for a new one")),
}


async def confirm_code(request: Request) -> Response:
    rt = runtime(request)
    as_json = is_json(request)
    data = await read_input(request)
    phone_raw, code = str(data.get("phone") or "").strip(), str(data.get("code") or "").strip()
    try:
        phone = normalize_phone(phone_raw, field="phone")
    except InputError as exc:
        if as_json:
            raise
        return await _form(request, {"phone": phone_raw}, shown_errors(exc), for_people(exc.message), exc.status_code)
    outcome = CodeCheck.WRONG
    if _CODE.match(code):
        settings = rt.settings
        async with rt.engine.begin() as conn:  # committed before answering: wrong tries count
            subscriber = await find_sms_subscriber(conn, phone)
            outcome = CodeCheck.EXPIRED
            if subscriber is not None:
                key, tries = settings.secret_key.get_secret_value(), settings.sms_code_max_attempts
                outcome = await check_code(conn, subscriber["id"], code, key, tries)
                if outcome is CodeCheck.OK:
                    await confirm_subscription(conn, subscriber["id"])
    if outcome is CodeCheck.OK:
        if as_json:
            return JSONResponse({"status": "confirmed", "channel": "sms", "address": phone})
        with i18n.using(own_language(request, subscriber or {})) as language:
            text = gettext("%(address)s will get an SMS for each update.", address=phone)
            return speaking(message_page(request, gettext("You are subscribed"), text), language)
    status, error_code, text = CODE_ERRORS[outcome]
    if not _CODE.match(code):
        status, error_code, text = 422, "invalid_input", N_("enter the 6-digit code from the SMS")
    if as_json:
        raise HTTPError(status, error_code, text, {"code": text})
    shown = for_people(text, "code")
    return render_page(request, "subscribe/enter_code.html", status_code=status, phone=phone, error=shown)


async def confirm_link(request: Request) -> Response:
    rt = runtime(request)
    signer = LinkSigner(rt.settings.secret_key.get_secret_value())
    subscriber_id = signer.verify(
        confirmations.CONFIRM_PURPOSE, request.query_params.get("token", ""), rt.settings.confirm_link_max_age_s
    )
    row = None
    if isinstance(subscriber_id, str):
        async with rt.engine.begin() as conn:
            row = await confirm_subscription(conn, subscriber_id)
    if row is None:
        if wants_json(request):
            raise HTTPError(
                400, "invalid_token", "this link is invalid or expired; sign up again", {"token": "invalid or expired"}
            )
        return message_page(
            request,
            gettext("This link has expired"),
            gettext("The confirmation link is invalid or too old. Sign up again for a new one."),
            400,
            link="/subscribe",
            link_text=gettext("Sign up again"),
        )
    if wants_json(request):
        return JSONResponse({"status": "confirmed", "channel": row["channel"], "address": row["address"]})
    with i18n.using(own_language(request, row)) as language:
        text = gettext("%(address)s will get an email for each update.", address=row["address"])
        return speaking(message_page(request, gettext("You are subscribed"), text), language)


routes = [
    Route("/subscribe/style.css", stylesheet, methods=["GET"]),
    Route("/subscribe", subscribe_form, methods=["GET"]),
    Route("/subscribe", subscribe, methods=["POST"]),
    Route("/subscribe/confirm", confirm_code, methods=["POST"]),
    Route("/subscriptions/confirm", confirm_link, methods=["GET"]),
]
