"""A local Twilio: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` as documented.

https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource

    provider = TwilioProvider(opted_out={"+15005550009"})
    async with serve_app(provider.app) as base_url:
        ...  # configure the channel with twilio_base_url=base_url
    provider.messages  # every accepted message, as Twilio answered it
    provider.throttle(times=2, retry_after_s=1)  # next two requests get 429
    provider.fail(times=1)  # next request gets 500

``GET /2010-04-01/Accounts/{AccountSid}.json`` answers the account resource (a pre-flight
check's read): https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
MAX_BODY_CHARS = 1600


# GSM 03.38: the default alphabet, and the extension table (ESC + code: two septets each).
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


def encoding_and_segments(body: str) -> tuple[str, int]:
    """How Twilio sends ``body``: ``("GSM-7" | "UCS-2", segments)`` (its ``num_segments``).

    GSM-7 counts septets (160 alone, 153 a part once concatenated); anything else goes as
    UCS-2 in UTF-16 code units (70, 67). An escape or surrogate pair never straddles parts.
    """
    if all(ch in _GSM7 or ch in _GSM7_EXTENSION for ch in body):
        encoding, sizes, single, part = "GSM-7", [1 + (ch in _GSM7_EXTENSION) for ch in body], 160, 153
    else:
        encoding, sizes, single, part = "UCS-2", [1 + (ord(ch) > 0xFFFF) for ch in body], 70, 67
    if sum(sizes) <= single:
        return encoding, 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return encoding, segments


def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Twilio's error shape."""
    return JSONResponse(
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status_code=status,
        headers=headers,
    )


def _unauthenticated() -> JSONResponse:
    """Twilio's answer to a wrong AccountSid or AuthToken (error 20003), on every endpoint."""
    return JSONResponse(
        {
            "code": 20003,
            "detail": "Your AccountSid or AuthToken was incorrect.",
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        },
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
    )


@dataclass
class TwilioProvider:
    """The Messages API of one account; configure it, serve ``app``, inspect ``messages``."""

    account_sid: str = "AC" + "a" * 32
    auth_token: str = "test-auth-token"
    senders: set[str] = field(default_factory=lambda: {"+15005550006"})
    messaging_service_sids: set[str] = field(default_factory=lambda: {"MG" + "b" * 32})
    opted_out: set[str] = field(default_factory=set)  # replied STOP: 21610
    unreachable: set[str] = field(default_factory=set)  # landlines and the like: 21614
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0  # every request to the Messages endpoint, accepted or not
    account_status: str = "active"  # or "suspended", "closed"
    account_fetches: int = 0  # every request to the Account endpoint, answered or not
    on_accept: Callable[[dict[str, Any]], None] | None = None  # called with each accepted message's resource
    _throttle_times: int = 0
    _throttle_until: float = 0.0
    _retry_after_s: int = 1
    _fail_times: int = 0
    _fail_status: int = 500

    def throttle(self, times: int = 0, seconds: float = 0.0, retry_after_s: int = 1) -> None:
        """Answer 429 (code 20429, ``Retry-After``) to the next ``times`` requests or for ``seconds``."""
        self._throttle_times = times
        self._throttle_until = time.monotonic() + seconds if seconds else 0.0
        self._retry_after_s = retry_after_s

    def fail(self, times: int = 1, status: int = 500) -> None:
        """Answer ``status`` (a 5xx) to the next ``times`` requests."""
        self._fail_times, self._fail_status = times, status

    def bodies_to(self, number: str) -> list[str]:
        return [m["body"] for m in self.messages if m["to"] == number]

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{account_sid}/Messages.json", self._create_message, methods=["POST"]),
                Route("/2010-04-01/Accounts/{account_sid}.json", self._fetch_account, methods=["GET"]),
            ]
        )

    def _authenticated(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(password, self.auth_token)

    async def _fetch_account(self, request: Request) -> JSONResponse:
        self.account_fetches += 1
        if not self._authenticated(request):
            return _unauthenticated()
        if request.path_params["account_sid"] != self.account_sid:
            return twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")
        created = format_datetime(datetime(2024, 1, 15, 9, 30, tzinfo=UTC), usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}"
        return JSONResponse(
            {
                "auth_token": self.auth_token,  # Twilio returns it: a client must never log this answer
                "date_created": created,
                "date_updated": created,
                "friendly_name": "broadcaster",
                "owner_account_sid": self.account_sid,
                "sid": self.account_sid,
                "status": self.account_status,
                "subresource_uris": {"messages": f"{uri}/Messages.json"},
                "type": "Full",
                "uri": f"{uri}.json",
            }
        )

    async def _create_message(self, request: Request) -> JSONResponse:
        self.requests += 1
        if not self._authenticated(request):
            return _unauthenticated()
        path_sid = request.path_params["account_sid"]
        if path_sid != self.account_sid:
            return twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")
        if self._throttle_times > 0 or time.monotonic() < self._throttle_until:
            self._throttle_times = max(0, self._throttle_times - 1)
            return twilio_error(429, 20429, "Too Many Requests", {"Retry-After": str(self._retry_after_s)})
        if self._fail_times > 0:
            self._fail_times -= 1
            return twilio_error(self._fail_status, 20500, "An internal server error has occurred")
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return twilio_error(400, 20001, "Request body must be application/x-www-form-urlencoded")

        form = await request.form()
        to, body = str(form.get("To") or ""), str(form.get("Body") or "")
        sender, service = str(form.get("From") or ""), str(form.get("MessagingServiceSid") or "")
        callback = str(form.get("StatusCallback") or "")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not body:
            return twilio_error(400, 21602, "Message body is required.")
        if not sender and not service:
            return twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        if service and service not in self.messaging_service_sids:
            return twilio_error(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if sender and sender not in self.senders:
            return twilio_error(
                400,
                21606,
                f"The From phone number {sender} is not a valid, SMS-capable "
                "inbound phone number or short code for your account.",
            )
        if callback and not callback.startswith(("http://", "https://")):
            return twilio_error(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        if len(body) > MAX_BODY_CHARS:
            return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not E164.match(to):
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in self.opted_out:
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        if to in self.unreachable:
            return twilio_error(400, 21614, f"'To' number {to} is not a valid mobile number")

        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # With only a Messaging Service, Twilio picks the sender later: "accepted".
            "status": "queued" if sender else "accepted",
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.messages.append({**resource, "status_callback": callback})
        if self.on_accept is not None:
            self.on_accept(resource)
        return JSONResponse(resource, status_code=201)
