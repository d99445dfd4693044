"""HTTP plumbing shared by every route module: JSON bodies, errors, auth."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from broadcaster.actors import Actor
from broadcaster.domain.tokens import authenticate
from broadcaster.errors import InputError
from broadcaster.models import ROLE_RANK, Role
from broadcaster.runtime import Runtime
from broadcaster.schemas import NUL_REASON


class HTTPError(Exception):
    """An error answered in the design's JSON shape."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers


def error_response(
    status_code: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    return JSONResponse(body, status_code=status_code, headers=headers)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return error_response(exc.status_code, exc.code, exc.message, exc.fields, exc.headers)


async def handle_input_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputError)
    return error_response(exc.status_code, exc.code, exc.message, exc.fields)


async def handle_starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "too_large"}
    if request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", ""):
        fields = {"body": str(exc.detail)} if exc.status_code == 413 else None  # the one field a cap names
        return error_response(
            exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail), fields, headers=exc.headers
        )
    return Response(str(exc.detail), status_code=exc.status_code, headers=exc.headers, media_type="text/plain")


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing (413) anything over ``max_bytes`` without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise HTTPError(413, "too_large", f"the body is over {max_bytes} bytes", {"body": "too large"})
        except ValueError:
            raise HTTPError(400, "bad_request", "invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPError(413, "too_large", f"the body is over {max_bytes} bytes", {"body": "too large"})
        chunks.append(chunk)
    return b"".join(chunks)


MAX_JSON_DEPTH = 64


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # NaN/Infinity: Python reads them, no JSON answer can carry them


async def read_json(request: Request, max_bytes: int | None = None) -> Any:
    """The JSON body (an object), or a 400/413/422 naming what is wrong.

    Refused: a body over ``max_bytes`` (default ``max_body_bytes``; 413), malformed or non-UTF-8
    JSON, NaN/Infinity, nesting deeper than ``MAX_JSON_DEPTH`` (400), and a NUL in any string or
    key (422 naming where: PostgreSQL cannot store it).
    """
    raw = await read_body(request, max_bytes or runtime(request).settings.max_body_bytes)
    if not raw.strip():
        raise HTTPError(400, "bad_request", "the body is empty; send a JSON object", {"body": "required"})
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise HTTPError(
            400,
            "malformed_json",
            f"the body is nested deeper than {MAX_JSON_DEPTH} levels",
            {"body": "nested too deeply"},
        ) from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise HTTPError(
            400, "malformed_json", f"the body is not valid JSON: {exc}", {"body": "malformed JSON"}
        ) from None
    if not isinstance(data, dict):
        raise HTTPError(422, "invalid_input", "the body must be a JSON object", {"body": "expected an object"})
    _check_json(data)
    return data


def _check_json(data: dict[str, Any]) -> None:
    """Depth and NUL checks over the decoded body, iteratively (a deep body must not exhaust the stack)."""
    pending: list[tuple[Any, str, int]] = [(data, "", 1)]
    while pending:
        value, where, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise HTTPError(
                400,
                "malformed_json",
                f"the body is nested deeper than {MAX_JSON_DEPTH} levels",
                {"body": "nested too deeply"},
            )
        if isinstance(value, str) and "\x00" in value:
            raise HTTPError(
                422,
                "invalid_input",
                "text must not contain a NUL character",
                {where or "body": NUL_REASON},
            )
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    raise HTTPError(
                        422,
                        "invalid_input",
                        "a key must not contain a NUL character",
                        {where or "body": f"a key {NUL_REASON}"},
                    )
                pending.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{where}.{i}" if where else str(i), depth + 1) for i, item in enumerate(value))


async def require_token(request: Request, minimum: Role) -> dict[str, Any]:
    """The API token row for the request's ``Authorization: Bearer`` header when its role is at least ``minimum``.

    401 without a valid token; 403 when its role is below ``minimum``. Every v1 route names its minimum:
    viewer reads, commander posts and retries, admin manages subscribers, tokens and the audit log.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPError(
            401, "unauthorized", "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"}
        )
    async with runtime(request).engine.connect() as conn:
        row = await authenticate(conn, token.strip())
    if row is None:
        raise HTTPError(401, "unauthorized", "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    role = row.get("role")
    if role not in {r.value for r in Role} or ROLE_RANK[Role(role)] < ROLE_RANK[minimum]:
        raise HTTPError(
            403,
            "forbidden",
            f"this needs a token with the {minimum.value} role or above",
            {"token": f"role {role!r} is below {minimum.value}"},
        )
    return row


def token_actor(token: Mapping[str, Any]) -> Actor:
    """The audit actor of an API token row (``token:NAME``), scoped by its id for idempotency."""
    return Actor.token(str(token["name"]), str(token["id"]))


def query_int(request: Request, name: str, default: int, minimum: int = 0, maximum: int = 1000) -> int:
    """An integer query parameter, clamped; garbage falls back to the default (never a 500)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, "bad_request", f"{name} must be an integer", {name: "must be an integer"}) from None
    return max(minimum, min(maximum, value))
