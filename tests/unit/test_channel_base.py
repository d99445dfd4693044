"""channels/base.py's shared helpers for settings and HTTP answers: one table per helper."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from channels.base import (
    ConfigError,
    DeliveryError,
    PermanentError,
    RateLimited,
    ResetHeader,
    RetryableError,
    as_utc,
    configured,
    credentials_error,
    http_error,
    map_transport_errors,
    rate_limit_reset_seconds,
    request_json,
    transport_error,
)

# -- configured ---------------------------------------------------------------------------

CONFIGURED_CASES: list[tuple[str, dict[str, SecretStr | str | None], bool | str]] = [
    # (case, required settings, result or the ConfigError's message)
    ("none given", {"A": None, "B": None}, False),
    ("empty values are not given", {"A": "", "B": SecretStr("")}, False),
    ("all given", {"A": "x", "B": SecretStr("s")}, True),
    ("one missing", {"A": "x", "B": None}, "Acme is half configured: set B"),
    ("empty secret missing", {"A": "x", "B": SecretStr(""), "C": None}, "Acme is half configured: set B, C"),
]


@pytest.mark.parametrize(("required", "expected"), [pytest.param(*case[1:], id=case[0]) for case in CONFIGURED_CASES])
def test_configured(required: dict[str, SecretStr | str | None], expected: bool | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(ConfigError) as caught:
            configured("Acme", required)
        assert str(caught.value) == expected
    else:
        assert configured("Acme", required) is expected


def later(seconds: int) -> Callable[[], str]:
    return lambda: str(int(time.time()) + seconds)


def iso_later(seconds: int, *, naive: bool = False) -> Callable[[], str]:
    def value() -> str:
        when = datetime.now(UTC) + timedelta(seconds=seconds)
        return (when.replace(tzinfo=None) if naive else when).isoformat()

    return value


def fixed(value: str) -> Callable[[], str]:
    return lambda: value


# -- rate_limit_reset_seconds ------------------------------------------------------------

RESET_CASES: list[tuple[str, dict[str, Callable[[], str]], ResetHeader | None, float | None]] = [
    # (case, headers (values made when the case runs), reset header, expected seconds)
    ("nothing", {}, None, None),
    ("retry-after seconds", {"Retry-After": fixed("12")}, None, 12.0),
    ("retry-after negative", {"Retry-After": fixed("-4")}, None, 0.0),
    ("retry-after in the past", {"Retry-After": fixed("Wed, 21 Oct 2015 07:28:00 GMT")}, None, 0.0),
    ("retry-after garbage", {"Retry-After": fixed("soon")}, None, None),
    ("reset header not asked for", {"ratelimit-reset": later(60)}, None, None),
    ("mastodon iso", {"X-RateLimit-Reset": iso_later(90)}, "x-ratelimit-reset", 90.0),
    ("mastodon naive iso is utc", {"X-RateLimit-Reset": iso_later(50, naive=True)}, "x-ratelimit-reset", 50.0),
    ("mastodon iso in the past", {"X-RateLimit-Reset": iso_later(-30)}, "x-ratelimit-reset", 0.0),
    ("mastodon epoch is not iso", {"X-RateLimit-Reset": later(100)}, "x-ratelimit-reset", None),
    ("x epoch", {"x-rate-limit-reset": later(120)}, "x-rate-limit-reset", 120.0),
    ("x small number is a delta", {"x-rate-limit-reset": fixed("30")}, "x-rate-limit-reset", 30.0),
    ("x epoch in the past", {"x-rate-limit-reset": later(-30)}, "x-rate-limit-reset", 0.0),
    ("x garbage", {"x-rate-limit-reset": fixed("abc")}, "x-rate-limit-reset", None),
    ("bluesky epoch", {"ratelimit-reset": later(60)}, "ratelimit-reset", 60.0),
    ("bluesky delta", {"ratelimit-reset": fixed("45")}, "ratelimit-reset", 45.0),
    ("bluesky empty", {"ratelimit-reset": fixed("")}, "ratelimit-reset", None),
    ("another provider's header", {"x-rate-limit-reset": later(120)}, "ratelimit-reset", None),
    ("retry-after wins", {"Retry-After": fixed("7"), "x-rate-limit-reset": later(900)}, "x-rate-limit-reset", 7.0),
    ("bad retry-after falls back", {"Retry-After": fixed("?"), "ratelimit-reset": fixed("9")}, "ratelimit-reset", 9.0),
]


@pytest.mark.parametrize(
    ("headers", "reset_header", "expected"), [pytest.param(*case[1:], id=case[0]) for case in RESET_CASES]
)
def test_rate_limit_reset_seconds(
    headers: dict[str, Callable[[], str]], reset_header: ResetHeader | None, expected: float | None
) -> None:
    made = httpx.Headers({name: value() for name, value in headers.items()})
    seconds = rate_limit_reset_seconds(made, reset_header)
    if expected is None:
        assert seconds is None
    else:
        assert seconds == pytest.approx(expected, abs=3)


# -- as_utc ------------------------------------------------------------------------------

PLUS_90_MIN = timezone(timedelta(hours=1, minutes=30))
AS_UTC_CASES: list[tuple[datetime, datetime]] = [
    # (time, the same time in UTC)
    (datetime(2026, 3, 1, 12, 0), datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),  # naive: taken as UTC
    (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
    (datetime(2026, 3, 1, 13, 30, tzinfo=PLUS_90_MIN), datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize(("when", "utc"), AS_UTC_CASES)
def test_as_utc(when: datetime, utc: datetime) -> None:
    converted = as_utc(when)
    assert converted == utc and converted.tzinfo is UTC


# -- http_error --------------------------------------------------------------------------

CREDENTIALS = "credentials need attention: "

HTTP_CASES: list[tuple[int, dict[str, str], ResetHeader | None, type[DeliveryError], str, float | None]] = [
    # (status, headers, reset header, error class, reason, retry_after_s)
    (429, {}, None, RateLimited, "r", None),
    (429, {"Retry-After": "12"}, None, RateLimited, "r", 12.0),
    (429, {"ratelimit-reset": "20"}, "ratelimit-reset", RateLimited, "r", 20.0),
    (429, {"ratelimit-reset": "20"}, None, RateLimited, "r", None),
    (500, {}, None, RetryableError, "r", None),
    (502, {"Retry-After": "30"}, None, RetryableError, "r", 30.0),
    (503, {"x-rate-limit-reset": "15"}, "x-rate-limit-reset", RetryableError, "r", 15.0),
    (408, {"Retry-After": "3"}, None, RetryableError, "r", 3.0),
    (401, {"Retry-After": "3"}, None, PermanentError, CREDENTIALS + "r", None),
    (403, {}, None, PermanentError, CREDENTIALS + "r", None),
    (400, {"Retry-After": "3"}, None, PermanentError, "r", None),
    (404, {}, None, PermanentError, "r", None),
    (409, {}, None, PermanentError, "r", None),
    (413, {}, None, PermanentError, "r", None),
    (422, {}, None, PermanentError, "r", None),
    (302, {}, None, PermanentError, "r", None),
]


@pytest.mark.parametrize(("status", "headers", "reset_header", "error", "reason", "retry_after_s"), HTTP_CASES)
def test_http_error(
    status: int,
    headers: dict[str, str],
    reset_header: ResetHeader | None,
    error: type[DeliveryError],
    reason: str,
    retry_after_s: float | None,
) -> None:
    translated = http_error(httpx.Response(status, headers=headers), "r", reset_header=reset_header)
    assert type(translated) is error
    assert translated.reason == reason
    assert getattr(translated, "retry_after_s", None) == retry_after_s
    assert getattr(translated, "suppress_recipient", False) is False


def test_credentials_error() -> None:
    error = credentials_error("mastodon answered 401: bad token")
    assert type(error) is PermanentError
    assert error.reason == "credentials need attention: mastodon answered 401: bad token"


# -- transport_error ---------------------------------------------------------------------

TRANSPORT_CASES: list[tuple[httpx.TransportError, str]] = [
    # (exception, reason)
    (httpx.ReadTimeout("slow"), "acme timed out (ReadTimeout)"),
    (httpx.ConnectTimeout("slow"), "acme timed out (ConnectTimeout)"),
    (httpx.PoolTimeout("busy"), "acme timed out (PoolTimeout)"),
    (httpx.ConnectError("refused"), "acme unreachable: ConnectError('refused')"),
    (httpx.RemoteProtocolError("reset"), "acme unreachable: RemoteProtocolError('reset')"),
]


@pytest.mark.parametrize(("exc", "reason"), TRANSPORT_CASES)
def test_transport_error(exc: httpx.TransportError, reason: str) -> None:
    error = transport_error(exc, "acme")
    assert type(error) is RetryableError
    assert error.reason == reason
    assert error.retry_after_s is None


def test_transport_error_names_the_action() -> None:
    error = transport_error(httpx.ReadTimeout("slow"), "acme", "GET /x")
    assert error.reason == "acme timed out on GET /x (ReadTimeout)"
    error = transport_error(httpx.ConnectError("refused"), "acme", "GET /x")
    assert error.reason == "acme unreachable on GET /x: ConnectError('refused')"


@pytest.mark.parametrize(("exc", "reason"), TRANSPORT_CASES)
def test_map_transport_errors(exc: httpx.TransportError, reason: str) -> None:
    with pytest.raises(RetryableError) as caught, map_transport_errors("acme"):
        raise exc
    assert type(caught.value) is RetryableError
    assert caught.value.reason == reason
    assert caught.value.__cause__ is exc


def test_map_transport_errors_leaves_other_errors_alone() -> None:
    # An answer that is an error is the provider's translate function's to read, not this one's.
    status_error = httpx.HTTPStatusError(
        "500", request=httpx.Request("GET", "https://a.test"), response=httpx.Response(500)
    )
    with pytest.raises(httpx.HTTPStatusError), map_transport_errors("acme"):
        raise status_error
    with pytest.raises(ValueError, match="not json"), map_transport_errors("acme"):
        raise ValueError("not json")


# -- request_json ------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def answering(status: int, content: bytes) -> Handler:
    return lambda request: httpx.Response(status, content=content)


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def translate(response: httpx.Response, action: str) -> DeliveryError:
    return PermanentError(f"translated {response.status_code} {action}")


REQUEST_CASES: list[tuple[str, Handler, Mapping[str, Any] | tuple[type[DeliveryError], str]]] = [
    # (case, transport, JSON returned or (error class, reason))
    ("object", answering(200, b'{"id": 5}'), {"id": 5}),
    ("created", answering(201, b'{"article": {"id": 3}}'), {"article": {"id": 3}}),
    ("not an object", answering(200, b"[1, 2]"), {}),
    ("not json", answering(200, b"<html>"), (RetryableError, "acme: unreadable answer to PUT /a/1.json")),
    ("no content", answering(204, b""), (RetryableError, "acme: unreadable answer to PUT /a/1.json")),
    ("error answer", answering(404, b"{}"), (PermanentError, "translated 404 PUT /a/1.json")),
    ("redirect", answering(302, b""), (PermanentError, "translated 302 PUT /a/1.json")),
    (
        "timeout",
        raising(httpx.ReadTimeout("slow")),
        (RetryableError, "acme timed out on PUT https://Acme.test/a/1.json (ReadTimeout)"),
    ),
    (
        "refused",
        raising(httpx.ConnectError("refused")),
        (RetryableError, "acme unreachable on PUT https://Acme.test/a/1.json: ConnectError('refused')"),
    ),
]


@pytest.mark.parametrize(("handler", "expected"), [pytest.param(*case[1:], id=case[0]) for case in REQUEST_CASES])
async def test_request_json(handler: Handler, expected: Mapping[str, Any] | tuple[type[DeliveryError], str]) -> None:
    sent: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    async with httpx.AsyncClient(base_url="https://Acme.test", transport=httpx.MockTransport(recording)) as client:
        call = request_json(
            client,
            "PUT",
            "/a/1.json",
            provider="acme",
            base_url="https://Acme.test",
            translate=translate,
            json={"x": 1},
        )
        if isinstance(expected, tuple):
            error, reason = expected
            with pytest.raises(DeliveryError) as caught:
                await call
            assert type(caught.value) is error
            assert caught.value.reason == reason
        else:
            assert await call == expected
    assert [(r.method, r.url.path, r.content) for r in sent] == [("PUT", "/a/1.json", b'{"x":1}')]
