"""Twilio's webhooks: inbound replies and message status callbacks.

Configure the sending number's "A message comes in" webhook as
``{public_url}/webhooks/twilio/inbound``; status callbacks come to
``{public_url}/webhooks/twilio/status`` (the SMS channel asks for them on every message).

Every request must carry a valid ``X-Twilio-Signature`` over ``public_url`` + path + query
and the form parameters (``broadcaster.twilio_signature``); anything else gets 403 and
changes nothing. ``public_url`` must therefore be the URL Twilio is configured with.

Replies: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT unsubscribe; START, UNSTOP subscribe
again (texting from the number proves it is the sender's); HELP, INFO answer the help text.
Twilio itself answers STOP and START on long codes, so those get an empty TwiML answer.
"""

from __future__ import annotations

import contextlib
import html
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcaster.delivery import ledger
from broadcaster.domain.signups import confirm_subscription, find_sms_subscriber, suppress
from broadcaster.domain.subscribers import normalize_phone, unsubscribe
from broadcaster.errors import InputError
from broadcaster.jobs.confirmations import sms_help_text
from broadcaster.twilio_signature import is_valid
from channels.sms import SmsSettings
from status_page.http import HTTPError, read_body, runtime

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})
# Delivery error codes that say the number will never receive our texts.
# https://www.twilio.com/docs/api/errors
DEAD_NUMBER_ERRORS = frozenset({"21610", "30005", "30006"})

Params = list[tuple[str, str]]


async def signed_params(request: Request) -> Params:
    """The form parameters of a request Twilio signed; 403 otherwise, 404 when SMS is off."""
    settings = runtime(request).settings
    sms = SmsSettings.from_core(settings)
    if sms is None or sms.twilio_auth_token is None:
        raise HTTPError(404, "not_found", "SMS is not configured")
    raw = await read_body(request, settings.max_body_bytes)
    try:
        params = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise HTTPError(400, "bad_request", "expected a form body") from None
    query = request.url.query
    url = settings.public_url + request.url.path + (f"?{query}" if query else "")
    if not is_valid(sms.twilio_auth_token.get_secret_value(), url, params, request.headers.get("x-twilio-signature")):
        raise HTTPError(403, "invalid_signature", "missing or invalid X-Twilio-Signature")
    return params


def twiml(message: str | None = None) -> Response:
    inner = f"<Message>{html.escape(message, quote=False)}</Message>" if message else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    return Response(body, media_type="text/xml")


def keyword(body: str) -> str:
    """The reply as a keyword: the whole text, trimmed of spaces and end punctuation, upper case."""
    return body.strip().rstrip(".!").strip().upper()


async def inbound(request: Request) -> Response:
    params = dict(await signed_params(request))
    rt = runtime(request)
    word = keyword(params.get("Body", ""))
    if word in HELP:
        language = None
        with contextlib.suppress(InputError):
            phone = normalize_phone(params.get("From", ""), field="From")
            async with rt.engine.connect() as conn:
                sender = await find_sms_subscriber(conn, phone)
            language = sender.get("language") if sender is not None else None
        return twiml(sms_help_text(rt.settings, language))  # in the texting subscriber's language
    if word not in OPT_OUT | OPT_IN:
        return twiml()
    try:
        phone = normalize_phone(params.get("From", ""), field="From")
    except InputError:
        return twiml()
    async with rt.engine.begin() as conn:
        subscriber = await find_sms_subscriber(conn, phone)
        if subscriber is not None:
            if word in OPT_OUT:
                await unsubscribe(conn, subscriber["id"])
            else:
                await confirm_subscription(conn, subscriber["id"])
    return twiml()


async def status_callback(request: Request) -> Response:
    params = dict(await signed_params(request))
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if not sid or status not in FINAL_STATUSES:
        return Response(status_code=204)
    code = params.get("ErrorCode") or ""
    error = None if status == "delivered" else f"twilio {status}" + (f": error {code}" if code else "")
    async with runtime(request).engine.begin() as conn:
        recipient = await ledger.set_provider_status(conn, "sms", sid, status, error)
        if recipient is not None and code in DEAD_NUMBER_ERRORS and error is not None:
            await suppress(conn, recipient, error)
    return Response(status_code=204)


routes = [
    Route("/webhooks/twilio/inbound", inbound, methods=["POST"]),
    Route("/webhooks/twilio/status", status_callback, methods=["POST"]),
]
