"""Inbound alerts, alert rules and drafts over the admin REST API (``broadcaster.alerts``).

- ``POST /api/v1/alerts/{source}``: a sender's webhook. PagerDuty is checked by its signature
  (``X-PagerDuty-Signature``, ``BROADCASTER_PAGERDUTY_WEBHOOK_SECRET``); the others by an API token
  (``Authorization: Bearer``, commander or above) or the source's secret (``?token=``, for senders that
  cannot set a header; ``broadcaster.alerts.auth``). The payload is read, matched to rules and turned
  into drafts before the answer (200); a payload that is not the sender's shape is a 422 naming the field.
- ``GET|POST /api/v1/alert-rules``, ``DELETE /api/v1/alert-rules/{rule_id}``.
- ``GET /api/v1/drafts``, ``POST /api/v1/drafts/{draft_id}/publish`` (through the one posting service;
  ``Idempotency-Key`` honoured), ``DELETE /api/v1/drafts/{draft_id}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster.actors import Actor
from broadcaster.alerts import auth, drafts, rules, sources
from broadcaster.domain import audit, idempotency
from broadcaster.errors import InputError
from broadcaster.models import AlertSource, DraftState, Role
from broadcaster.schemas import MAX_MESSAGE_CHARS, Strict, validate
from status_page.http import HTTPError, query_int, read_json, require_token, runtime, token_actor

ALERT_BODY_MAX_BYTES = 1024 * 1024  # Alertmanager groups many alerts in one payload
ALERT_PATHS = tuple(f"/api/v1/alerts/{source.value}" for source in AlertSource)


class DraftPublishIn(Strict):
    """``POST /api/v1/drafts/{draft_id}/publish``: publish as drafted, or with a new title or message."""

    title: str | None = Field(default=None, min_length=1, max_length=255)
    message: str | None = Field(default=None, min_length=1, max_length=MAX_MESSAGE_CHARS)


def _unauthorized(message: str, field: str) -> HTTPError:
    return HTTPError(401, "unauthorized", message, {field: message})


async def _sender(request: Request, source_name: str) -> tuple[AlertSource, Actor]:
    """Who sent the alert (401/403 otherwise), then which source it is (404 for none)."""
    settings = runtime(request).settings
    if source_name == AlertSource.PAGERDUTY.value:
        secret = settings.pagerduty_webhook_secret
        if secret is None:
            raise _unauthorized("BROADCASTER_PAGERDUTY_WEBHOOK_SECRET is not set", auth.SIGNATURE_HEADER)
        body = await request.body()
        if not auth.pagerduty_signed(secret.get_secret_value(), body, request.headers.get(auth.SIGNATURE_HEADER)):
            raise _unauthorized("the signature does not match the body", auth.SIGNATURE_HEADER)
        return AlertSource.PAGERDUTY, Actor.system("alerts.pagerduty")
    given = request.query_params.get("token")
    if given is not None:
        known = source_name in {s.value for s in AlertSource}
        if not known or not auth.source_token_ok(
            settings.secret_key.get_secret_value(), AlertSource(source_name), given
        ):
            raise _unauthorized("invalid token for this source", "token")
        return AlertSource(source_name), Actor.system(f"alerts.{source_name}")
    token = await require_token(request, Role.COMMANDER)
    try:
        return AlertSource(source_name), token_actor(token)
    except ValueError:
        names = ", ".join(s.value for s in AlertSource)
        raise HTTPError(404, "not_found", "no such alert source", {"source": f"one of {names}"}) from None


async def receive_alerts(request: Request) -> Response:
    source, actor = await _sender(request, request.path_params["source"])
    data = await read_json(request, ALERT_BODY_MAX_BYTES)
    alerts = sources.parse(source, data)
    intake = await drafts.receive(runtime(request), source, alerts, actor)
    return JSONResponse(
        {
            "source": source.value,
            "alerts": intake.alerts,
            "matched": intake.matched,
            "drafts_created": intake.created,
            "drafts_updated": intake.updated,
        }
    )


async def list_rules(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        rows = await rules.list_rules(conn)
    return JSONResponse([rules.rule_json(r) for r in rows])


async def create_rule(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    data = validate(rules.AlertRuleIn, await read_json(request))
    async with runtime(request).engine.begin() as conn:
        row = await rules.save_rule(conn, data)
        await audit.record(conn, str(token_actor(token)), "alert_rule.create", target=row["id"], source=row["source"])
    return JSONResponse(rules.rule_json(row), status_code=201)


async def delete_rule(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    rule_id = request.path_params["rule_id"]
    async with runtime(request).engine.begin() as conn:
        await rules.delete_rule(conn, rule_id)
        await audit.record(conn, str(token_actor(token)), "alert_rule.delete", target=rule_id)
    return Response(status_code=204)


def _state(request: Request) -> DraftState | None:
    raw = request.query_params.get("state", DraftState.PENDING.value)
    if raw == "all":
        return None
    try:
        return DraftState(raw)
    except ValueError:
        allowed = ", ".join([*(s.value for s in DraftState), "all"])
        raise InputError("invalid state", {"state": f"one of {allowed}"}) from None


async def list_drafts(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    rt = runtime(request)
    state, limit = _state(request), query_int(request, "limit", 100, 1, 500)
    async with rt.engine.connect() as conn:
        rows = await drafts.list_drafts(conn, state, limit)
    return JSONResponse([drafts.draft_json(r, rt.settings.public_url) for r in rows])


async def publish_draft(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    rt = runtime(request)
    draft_id = request.path_params["draft_id"]
    data = validate(DraftPublishIn, await read_json(request) if (await request.body()).strip() else {})
    key = idempotency.check_key(request.headers.get(idempotency.HEADER))
    result = await drafts.publish(
        rt, draft_id, token_actor(token), title=data.title, message=data.message, idempotency_key=key
    )
    ref: dict[str, Any] = result.ref or {}
    async with rt.engine.connect() as conn:
        row = await drafts.get_draft(conn, draft_id)
    body = {**ref, "url": f"{rt.settings.public_url}/incidents/{ref.get('incident_id')}"}
    headers = {"Idempotent-Replayed": "true"} if result.replayed is not None else {}
    return JSONResponse({**body, "draft": drafts.draft_json(row, rt.settings.public_url)}, 201, headers)


async def delete_draft(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    await drafts.discard(runtime(request), request.path_params["draft_id"], token_actor(token))
    return Response(status_code=204)


routes = [
    Route("/api/v1/alerts/{source}", receive_alerts, methods=["POST"]),
    Route("/api/v1/alert-rules", list_rules, methods=["GET"]),
    Route("/api/v1/alert-rules", create_rule, methods=["POST"]),
    Route("/api/v1/alert-rules/{rule_id}", delete_rule, methods=["DELETE"]),
    Route("/api/v1/drafts", list_drafts, methods=["GET"]),
    Route("/api/v1/drafts/{draft_id}/publish", publish_draft, methods=["POST"]),
    Route("/api/v1/drafts/{draft_id}", delete_draft, methods=["DELETE"]),
]
