"""Public sign-up: ``/subscribe`` (email, SMS, webhook, chat webhooks), SMS codes, email confirmation links.

``POST /subscribe`` takes a form or JSON ``{email | phone | webhook | slack | teams | discord |
google_chat, components?}`` (a chat field holds that service's incoming-webhook URL) and
answers HTML to a form, JSON to JSON (202 with ``status``). Email and SMS sign-ups get a
confirmation (a signed link valid ``confirm_link_max_age_s``, a 6-digit code valid
``sms_code_ttl_s``) sent by the worker's ``send_confirmation`` job (inline, with a timeout,
when Redis cannot take the job). A public webhook or chat sign-up is stored unconfirmed and
waits for an admin (``POST /api/v1/subscribers`` with ``confirmed: true``); a webhook's answer
carries the signing secret once.

Abuse limits (fixed windows in Redis, 429 with ``Retry-After``): per client IP for every
channel, and for phones also per number and per number prefix, against SMS pumping; then,
only when a confirmation is about to go out, per address (``subscribe_confirmations_per_address``
a day, whoever asks) and, for SMS, a budget of sign-up texts an hour for the whole installation.
Phones must be from ``sms_countries`` when it is set (422 naming ``phone``). Without Redis,
email sign-ups go on unlimited (logged) and SMS sign-ups are refused (503): texts cost money.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster.domain.components import list_components
from broadcaster.domain.signups import (
    CodeCheck,
    check_code,
    check_sms_country,
    confirm_subscription,
    confirmation_key,
    find_sms_subscriber,
    sign_up,
)
from broadcaster.domain.subscribers import CHAT_CHANNELS, URL_CHANNELS, normalize_phone
from broadcaster.errors import DeliveryError, InputError
from broadcaster.jobs import confirmations
from broadcaster.ratelimit import Limit, LimiterUnavailable, RateLimiter
from broadcaster.runtime import Runtime
from broadcaster.schemas import NUL_REASON
from broadcaster.security import LinkSigner
from status_page.http import HTTPError, read_body, read_json, runtime
from status_page.pages import render_page

log = logging.getLogger(__name__)

INLINE_SEND_TIMEOUT_S = 10.0
CHANNEL_OF_FIELD = {"email": "email", "phone": "sms", "webhook": "webhook", **{name: name for name in CHAT_CHANNELS}}
ONE_OF = "give exactly one of email, phone, webhook or a chat webhook URL (slack, teams, discord, google_chat)"
_CODE = re.compile(r"^[0-9]{6}$")


# --- request plumbing ---------------------------------------------------------------------------


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def read_input(request: Request) -> dict[str, Any]:
    """The body as a dict: JSON object, or form fields (``components`` as a list)."""
    if is_json(request):
        data: dict[str, Any] = await read_json(request)
        return data
    raw = await read_body(request, runtime(request).settings.max_body_bytes)  # refuses oversized bodies

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=0, max_fields=600)
    for key, value in form.multi_items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise InputError("invalid input", {key.replace("\x00", "") or "body": NUL_REASON})
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "components"}
    values["components"] = [v for k in ("components", "components[]") for v in form.getlist(k) if isinstance(v, str)]
    return values


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limited(retry_after_s: int, what: str) -> HTTPError:
    return HTTPError(
        429,
        "rate_limited",
        f"too many {what}; try again in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


async def component_choices(rt: Runtime) -> list[dict[str, str]]:
    async with rt.engine.connect() as conn:
        rows = await list_components(conn)
    groups = {r["id"]: r for r in rows if r["is_group"]}
    choices = []
    for row in rows:
        if row["is_group"]:
            continue
        group = groups.get(row.get("group_id") or "")
        name = f"{group['name']} - {row['name']}" if group else row["name"]
        choices.append({"id": row["id"], "name": name})
    return choices


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


def parse_sign_up(rt: Runtime, data: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(channel, address, component ids) from the body; exactly one of email/phone/webhook."""
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
        raise InputError(f"{channel} notifications are not available", {field: f"{channel} is not enabled here"})
    components = data.get("components") or []
    if not isinstance(components, list) or len(components) > 500 or not all(isinstance(c, str) for c in components):
        raise InputError("invalid components", {"components": "expected a list of component ids"})
    return channel, address, list(dict.fromkeys(components))


async def _limiter(rt: Runtime) -> RateLimiter:
    try:
        redis = await rt.queue.pool()
    except Exception as exc:  # redis-py's own errors as well as OSError
        raise LimiterUnavailable(str(exc)) from exc
    return RateLimiter(redis, namespace=rt.settings.queue_name)


async def check_limits(rt: Runtime, channel: str, address: str, ip: str) -> str:
    """Apply the abuse limits; returns the address (E.164 for a phone). Raises 429 or 503."""
    settings = rt.settings
    window = settings.subscribe_window_s
    try:
        limiter = await _limiter(rt)
        if channel != "sms":
            wait = await limiter.hit(f"subscribe:{channel}:ip:{ip}", settings.subscribe_email_per_ip, window)
            if wait is not None:
                raise rate_limited(wait, "sign-ups from this address")
            return address
        wait = await limiter.hit(f"subscribe:sms:ip:{ip}", settings.subscribe_sms_per_ip, window)
        if wait is not None:
            raise rate_limited(wait, "SMS sign-ups from this address")
        phone = normalize_phone(address, field="phone")
        check_sms_country(phone, settings.sms_countries)
        prefix = phone[: 1 + settings.subscribe_sms_prefix_digits]
        wait = await limiter.check(
            [
                Limit(f"subscribe:sms:number:{phone}", settings.subscribe_sms_per_number, window),
                Limit(f"subscribe:sms:prefix:{prefix}", settings.subscribe_sms_per_prefix, window),
            ]
        )
        if wait is not None:
            raise rate_limited(wait, "SMS sign-ups for this number")
        return phone
    except LimiterUnavailable as exc:
        _limits_unavailable(channel, exc)
        return address


async def check_confirmation_limits(rt: Runtime, channel: str, address: str) -> None:
    """Before a confirmation goes out: the per-address cap, and for SMS the hourly budget. Raises 429 or 503."""
    settings = rt.settings
    try:
        limiter = await _limiter(rt)
        key = confirmation_key(settings.secret_key.get_secret_value(), channel, address)
        wait = await limiter.hit(
            key, settings.subscribe_confirmations_per_address, settings.subscribe_confirmations_window_s
        )
        if wait is not None:
            raise rate_limited(wait, "confirmations sent to this address")
        if channel == "sms":
            wait = await limiter.hit("subscribe:sms:budget", settings.sms_hourly_budget, 3600)
            if wait is not None:
                raise rate_limited(wait, "SMS sign-ups here this hour")
    except LimiterUnavailable as exc:
        _limits_unavailable(channel, exc)


def _limits_unavailable(channel: str, exc: LimiterUnavailable) -> None:
    """Redis is down: SMS sign-ups are refused (texts cost money: no limits, no texts), others go on."""
    if channel == "sms":
        raise HTTPError(
            503, "unavailable", "SMS sign-up is unavailable right now; try again later", headers={"Retry-After": "60"}
        ) from exc
    log.warning("sign-up rate limits not checked: %s", exc)


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
        chats=[(name, rt.registry.enabled[name].title) for name in CHAT_CHANNELS if name in rt.registry.enabled],
    )


async def subscribe(request: Request) -> Response:
    rt = runtime(request)
    as_json = is_json(request)
    data = await read_input(request)
    try:
        channel, address, components = parse_sign_up(rt, data)
        address = await check_limits(rt, channel, address, client_ip(request))
        async with rt.engine.begin() as conn:  # a refused confirmation rolls the sign-up back
            result = await sign_up(
                conn, channel, address, components, allow_private_webhooks=rt.settings.webhook_allow_private
            )
            if result.needs_confirmation:
                await check_confirmation_limits(rt, channel, result.subscriber["address"])
    except InputError as exc:
        if as_json:
            raise
        return await _form(
            request, data, {k.split(".")[0]: v for k, v in exc.fields.items()}, exc.message, exc.status_code
        )
    except HTTPError as exc:
        if as_json or exc.status_code not in (429, 503):
            raise
        return message_page(request, "Please wait", exc.message, exc.status_code, headers=exc.headers)
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
            request, "Webhook registered", "An administrator will confirm this webhook before it receives updates.", 202
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


# --- confirming ---------------------------------------------------------------------------------

CODE_ERRORS = {
    CodeCheck.WRONG: (422, "wrong_code", "that code is not right; check the SMS and try again"),
    CodeCheck.EXPIRED: (422, "code_expired", "this code expired or was never sent; sign up again"),
    CodeCheck.EXHAUSTED: (429, "too_many_attempts", "too many wrong codes; sign up again for a new one"),
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
        return await _form(request, {"phone": phone_raw}, exc.fields, exc.message, exc.status_code)
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
        return message_page(request, "You are subscribed", f"{phone} will get an SMS for each update.")
    status, error_code, text = CODE_ERRORS[outcome]
    if not _CODE.match(code):
        status, error_code, text = 422, "invalid_input", "enter the 6-digit code from the SMS"
    if as_json:
        raise HTTPError(status, error_code, text, {"code": text})
    return render_page(request, "subscribe/enter_code.html", status_code=status, phone=phone, error=text)


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
            "This link has expired",
            "The confirmation link is invalid or too old. Sign up again for a new one.",
            400,
            link="/subscribe",
            link_text="Sign up again",
        )
    if wants_json(request):
        return JSONResponse({"status": "confirmed", "channel": row["channel"], "address": row["address"]})
    return message_page(request, "You are subscribed", f"{row['address']} will get an email for each update.")


routes = [
    Route("/subscribe/style.css", stylesheet, methods=["GET"]),
    Route("/subscribe", subscribe_form, methods=["GET"]),
    Route("/subscribe", subscribe, methods=["POST"]),
    Route("/subscribe/confirm", confirm_code, methods=["POST"]),
    Route("/subscriptions/confirm", confirm_link, methods=["GET"]),
]
