"""A script of hostile and broken inputs: only 4xx answers with the field named, and sanitized output."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from broadcaster.render import markdown_to_html

OK_INCIDENT = {"title": "Outage", "status": "investigating", "message": "Looking into it.", "channels": []}

# (name, method, path, body (dict -> JSON, bytes -> raw), expected status, field named in the error or None)
BAD_REQUESTS: list[tuple[str, str, str, Any, int, str | None]] = [
    ("title wrong type", "POST", "/api/v1/incidents", {**OK_INCIDENT, "title": 42}, 422, "title"),
    ("title missing", "POST", "/api/v1/incidents", {"status": "investigating", "message": "x"}, 422, "title"),
    ("message wrong type", "POST", "/api/v1/incidents", {**OK_INCIDENT, "message": ["x"]}, 422, "message"),
    ("empty message", "POST", "/api/v1/incidents", {**OK_INCIDENT, "message": "   "}, 422, "message"),
    ("unknown status", "POST", "/api/v1/incidents", {**OK_INCIDENT, "status": "on_fire"}, 422, "status"),
    (
        "maintenance status on incident",
        "POST",
        "/api/v1/incidents",
        {**OK_INCIDENT, "status": "scheduled"},
        422,
        "status",
    ),
    ("unknown impact", "POST", "/api/v1/incidents", {**OK_INCIDENT, "impact": "apocalyptic"}, 422, "impact"),
    (
        "unknown component id",
        "POST",
        "/api/v1/incidents",
        {**OK_INCIDENT, "components": {"nope00000000": "major_outage"}},
        422,
        "components.nope00000000",
    ),
    (
        "bad component status",
        "POST",
        "/api/v1/incidents",
        {**OK_INCIDENT, "components": {"x": "kaput"}},
        422,
        "components.x",
    ),
    ("unknown channel", "POST", "/api/v1/incidents", {**OK_INCIDENT, "channels": ["carrier-pigeon"]}, 422, "channels"),
    ("unknown field", "POST", "/api/v1/incidents", {**OK_INCIDENT, "colour": "red"}, 422, "colour"),
    (
        "next update negative",
        "POST",
        "/api/v1/incidents",
        {**OK_INCIDENT, "next_update_in_minutes": -5},
        422,
        "next_update_in_minutes",
    ),
    ("body is a list", "POST", "/api/v1/incidents", [1, 2, 3], 422, "body"),
    ("malformed JSON", "POST", "/api/v1/incidents", b'{"title": "x",', 400, "body"),
    ("not UTF-8", "POST", "/api/v1/incidents", b"\xff\xfe\x00", 400, "body"),
    ("empty body", "POST", "/api/v1/incidents", b"", 400, "body"),
    ("1 MB body", "POST", "/api/v1/incidents", {**OK_INCIDENT, "message": "x" * 1_000_000}, 413, "body"),
    (
        "update of unknown incident",
        "POST",
        "/api/v1/incidents/doesnotexist/updates",
        {"status": "identified", "message": "x"},
        404,
        "incident_id",
    ),
    ("unknown update deliveries", "GET", "/api/v1/updates/doesnotexist/deliveries", None, 404, "update_id"),
    ("component without name", "POST", "/api/v1/components", {"description": "x"}, 422, "name"),
    ("component bad status", "POST", "/api/v1/components", {"name": "A", "status": "meh"}, 422, "status"),
    ("patch unknown component", "PATCH", "/api/v1/components/nope", {"status": "major_outage"}, 404, "id"),
    (
        "subscriber bad email",
        "POST",
        "/api/v1/subscribers",
        {"channel": "email", "address": "not-an-email"},
        422,
        "address",
    ),
    ("subscriber bad phone", "POST", "/api/v1/subscribers", {"channel": "sms", "address": "+1 555"}, 422, "address"),
    (
        "subscriber bad channel",
        "POST",
        "/api/v1/subscribers",
        {"channel": "fax", "address": "x@example.com"},
        422,
        "channel",
    ),
    (
        "subscriber webhook javascript",
        "POST",
        "/api/v1/subscribers",
        {"channel": "webhook", "address": "javascript:alert(1)"},
        422,
        "address",
    ),
    ("preview without title", "POST", "/api/v1/preview", {"message": "x"}, 422, "title"),
    ("limit garbage", "GET", "/api/v1/incidents?limit=abc", None, 400, "limit"),
    ("delete unknown subscriber", "DELETE", "/api/v1/subscribers/nope", None, 404, "id"),
]


async def send(client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    if isinstance(body, bytes):
        return await client.request(method, path, content=body, headers={**headers, "content-type": "application/json"})
    if body is None:
        return await client.request(method, path, headers=headers)
    return await client.request(
        method, path, content=json.dumps(body), headers={**headers, "content-type": "application/json"}
    )


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "status", "field"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS]
)
async def test_bad_input_is_a_4xx_naming_the_field(client, auth, name, method, path, body, status, field) -> None:
    response = await send(client, method, path, body, auth)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    if field is not None:
        assert field in error["fields"], error


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}],
    ids=["missing", "wrong", "basic", "empty"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/incidents"),
        ("POST", "/api/v1/incidents"),
        ("GET", "/api/v1/channels"),
        ("POST", "/api/v1/subscribers"),
    ],
)
async def test_missing_or_wrong_token_is_401(client, headers, method, path) -> None:
    response = await client.request(method, path, headers=headers, json=OK_INCIDENT)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_nothing_is_stored_by_a_rejected_post(client, auth) -> None:
    await client.post("/api/v1/incidents", headers=auth, json={**OK_INCIDENT, "status": "nope"})
    assert (await client.get("/api/v1/incidents", headers=auth)).json() == []


HOSTILE_MARKDOWN = [
    "<script>alert(1)</script>Hello",
    "[click](javascript:alert(1))",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src='https://evil.example'></iframe>",
    '<p onclick="steal()">text</p>',
    "[x](JaVaScRiPt:alert(1))",
    '<svg onload="alert(1)"></svg>',
    "<style>body{display:none}</style>",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
]


@pytest.mark.parametrize("markdown", HOSTILE_MARKDOWN)
def test_markdown_is_sanitized(markdown: str) -> None:
    html = markdown_to_html(markdown).lower()
    for forbidden in ("<script", "javascript:", "onerror", "onclick", "onload", "<iframe", "<style", "data:", "<svg"):
        assert forbidden not in html, html


async def test_hostile_markdown_through_the_api_is_stored_but_served_sanitized(client, auth) -> None:
    body = {**OK_INCIDENT, "message": "Fine <script>alert(1)</script> [x](javascript:alert(1))"}
    response = await client.post("/api/v1/incidents", headers=auth, json=body)
    assert response.status_code == 201
    update = response.json()["update"]
    assert update["body"] == body["message"], "the author's words are kept as written"
    assert "<script" not in update["body_html"] and "javascript:" not in update["body_html"]
    preview = await client.post("/api/v1/preview", headers=auth, json={"title": "T", "message": body["message"]})
    assert preview.status_code == 200
    assert "<script" not in json.dumps(preview.json())
