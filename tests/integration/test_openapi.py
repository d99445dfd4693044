"""The OpenAPI document: valid 3.1, lists every API route, and real answers match it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import httpx
import jsonschema_rs
from starlette.routing import Route

from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from status_page.api.openapi import document
from tests.conftest import run_worker


async def served_document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    data: dict[str, Any] = response.json()
    return data


def template_of(doc: dict[str, Any], method: str, path: str) -> str:
    for template, methods in doc["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if method.lower() in methods and re.match(pattern, path):
            return template
    raise AssertionError(f"{method} {path} is not documented")


def conforms(doc: dict[str, Any], response: httpx.Response) -> None:
    """The answer's status is documented for its operation and its body matches the schema."""
    request = response.request
    template = template_of(doc, request.method, request.url.path)
    documented = doc["paths"][template][request.method.lower()]["responses"]
    status = str(response.status_code)
    assert status in documented, f"{request.method} {template} answered undocumented {status}: {response.text}"
    schema = documented[status].get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        assert not response.content, f"{status} should have no body"
        return
    root = {**schema, "components": doc["components"]}
    errors = [
        f"{e.instance_path}: {e.message}" for e in jsonschema_rs.Draft202012Validator(root).iter_errors(response.json())
    ]
    assert not errors, f"{request.method} {template} {status}: {errors[:5]}"


VALIDATE = """
import json, sys
import schemathesis
schema = schemathesis.openapi.from_dict(json.load(sys.stdin))
print(sum(1 for result in schema.get_all_operations() if result.ok()))
"""


def test_document_is_valid_openapi_31() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    # schemathesis loads (and validates) the document; in a child process, because loading it
    # leaves state behind that stalls later app shutdowns in this one.
    loaded = subprocess.run(
        [sys.executable, "-c", VALIDATE], input=json.dumps(doc), capture_output=True, text=True, timeout=60
    )
    assert loaded.returncode == 0, loaded.stderr
    assert int(loaded.stdout.strip()) == sum(len(m) for m in doc["paths"].values())
    for methods in doc["paths"].values():
        for op in methods.values():
            if op["security"]:
                assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }


async def test_every_api_route_is_documented(client: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    doc = await served_document(client)
    served = {
        (method.lower(), route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith(("/api/v1/", "/api/v2/"))
        for method in route.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(method, path) for path, methods in doc["paths"].items() for method in methods}
    assert served - documented == set(), "routes missing from status_page/api/openapi.py OPERATIONS"
    assert documented - served == set(), "documented routes that do not exist"


async def test_real_answers_match_the_document(client: httpx.AsyncClient, auth: dict[str, str], settings) -> None:  # type: ignore[no-untyped-def]
    doc = await served_document(client)

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, path, **kwargs)
        conforms(doc, response)
        return response

    component = (
        await call("POST", "/api/v1/components", headers=auth, json={"name": "API", "description": "public API"})
    ).json()
    await call("POST", "/api/v1/components", headers=auth, json={"name": "Child", "group": "Group"})
    await call("PATCH", f"/api/v1/components/{component['id']}", headers=auth, json={"status": "degraded_performance"})
    await call("GET", "/api/v1/components", headers=auth)
    receiver = WebhookReceiver(script=[410])
    async with serve_app(receiver.app()) as base:
        await call(
            "POST",
            "/api/v1/subscribers",
            headers=auth,
            json={"channel": "webhook", "address": f"{base}/hook", "confirmed": True},
        )
        again = await call(
            "POST",
            "/api/v1/subscribers",
            headers=auth,
            json={"channel": "webhook", "address": f"{base}/hook", "confirmed": True},
        )
        assert again.status_code == 200
        email = (
            await call(
                "POST", "/api/v1/subscribers", headers=auth, json={"channel": "email", "address": "ops@example.com"}
            )
        ).json()
        incident = (
            await call(
                "POST",
                "/api/v1/incidents",
                headers={**auth, "Idempotency-Key": "k-1"},
                json={
                    "title": "Errors",
                    "status": "investigating",
                    "impact": "minor",
                    "message": "Looking.",
                    "components": {component["id"]: "partial_outage"},
                    "next_update_in_minutes": 30,
                },
            )
        ).json()
        update = (
            await call(
                "POST",
                f"/api/v1/incidents/{incident['id']}/updates",
                headers=auth,
                json={"status": "identified", "message": "Found it."},
            )
        ).json()
        await run_worker(settings)
    await call("GET", "/api/v1/incidents", headers=auth)
    await call("GET", f"/api/v1/incidents/{incident['id']}", headers=auth)
    await call(
        "POST", "/api/v1/preview", headers=auth, json={"title": "T", "status": "investigating", "message": "Hello"}
    )
    await call("GET", f"/api/v1/updates/{update['id']}/deliveries", headers=auth)
    await call("GET", f"/api/v1/updates/{incident['update']['id']}/failures", headers=auth)
    dead = (await call("GET", "/api/v1/deadletter", headers=auth)).json()
    assert dead["total"] >= 1
    await call(
        "POST",
        f"/api/v1/updates/{incident['update']['id']}/deliveries/retry",
        headers=auth,
        json={"channel": "webhook"},
    )
    await call("GET", "/api/v1/channels", headers=auth)
    await call("GET", "/api/v1/subscribers", headers=auth)
    await call("DELETE", f"/api/v1/subscribers/{email['id']}", headers=auth)
    for path in doc["paths"]:
        if path.startswith("/api/v2/"):
            first = await call("GET", path)
            await call("GET", path, headers={"If-None-Match": first.headers["etag"]})

    # the error shape, on each kind of error
    await call("GET", "/api/v1/incidents")  # 401
    await call("GET", "/api/v1/incidents/nope", headers=auth)  # 404
    await call("POST", "/api/v1/incidents", headers=auth, content=b"{not json")  # 400
    await call("POST", "/api/v1/incidents", headers=auth, json={"title": ""})  # 422
    await call("GET", "/api/v1/incidents?limit=abc", headers=auth)  # 400
    await call("DELETE", "/api/v1/subscribers/nope", headers=auth)  # 404
    await call("POST", "/api/v1/components", headers=auth, content=b"x" * (settings.max_body_bytes + 1))  # 413


async def test_reference_page_renders_every_operation_without_a_cdn(client: httpx.AsyncClient) -> None:
    doc = await served_document(client)
    page = await client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in doc["paths"]:
        assert f"<code>{path}</code>" in page.text
    assert not re.search(r"""(src|href)=['"]?https?://""", page.text), "the page must not load anything remote"
    assert (await client.get("/api/docs.css")).status_code == 200
