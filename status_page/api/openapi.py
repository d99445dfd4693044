"""The API reference: an OpenAPI 3.1 document at ``/api/openapi.json``, rendered at ``/api/docs``.

The document is generated from ``OPERATIONS`` (one row per route: method, path, summary,
request model, answers) and the pydantic models of ``broadcaster.schemas``, so request bodies
cannot drift from what the API validates. Answer schemas live in ``openapi_schemas``;
``tests/integration/test_openapi.py`` checks them against real answers and checks that every
``/api/v1`` and ``/api/v2`` route is listed here.

The reference page is static HTML built from the same document (no JavaScript, no CDN).
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from status_page.api.openapi_alerts import ALERT_OPERATIONS, ALERT_SCHEMAS, ALERTS
from status_page.api.openapi_operations import OPERATIONS, PLAYBOOKS, V1, V2, Op
from status_page.api.openapi_page import PAGE_SCHEMAS
from status_page.api.openapi_schemas import RESPONSE_SCHEMAS, Schema, ref

ERROR_TEXT = {
    400: "Malformed request: empty or invalid JSON, or a bad query parameter",
    401: "Missing, invalid or revoked bearer token",
    403: "The token's role may not do this",
    404: "No such resource",
    409: "Conflicts with what is stored (or the same Idempotency-Key is still in progress)",
    413: "Body larger than BROADCASTER_MAX_BODY_BYTES",
    422: "Invalid input: ``error.fields`` names each bad field",
}


LIST_SCHEMAS: dict[str, Schema] = {
    "ComponentList": {"type": "array", "items": ref("Component")},
    "IncidentList": {"type": "array", "items": ref("Incident")},
    "FailureList": {"type": "array", "items": ref("Failure")},
}


def _request_schemas() -> dict[str, Schema]:
    """Every request model's JSON schema (pydantic's, draft 2020-12) with its $defs hoisted."""
    schemas: dict[str, Schema] = {}
    models = {op.body for op in (*OPERATIONS, *ALERT_OPERATIONS) if op.body is not None}
    for model in sorted(models, key=lambda m: m.__name__):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _error_response(status: int) -> Schema:
    return {"description": ERROR_TEXT[status], "content": {"application/json": {"schema": ref("Error")}}}


def _operation(op: Op) -> Schema:
    responses: dict[str, Schema] = {}
    for status, schema in sorted(op.answers.items()):
        answer: Schema = {
            "description": "Not modified (If-None-Match matched the ETag)"
            if status == 304
            else "No content"
            if schema is None
            else "OK"
        }
        if schema is not None:
            answer["content"] = {op.media_type: {"schema": ref(schema)}}
        responses[str(status)] = answer
    for status in sorted({*op.errors, *((401,) if op.auth else ())}):
        responses[str(status)] = _error_response(status)
    path_id = op.path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    operation: Schema = {
        "operationId": f"{op.method.lower()}_{path_id}".replace(".", "_").replace("-", "_"),
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        operation["description"] = op.description
    if op.params:
        operation["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(op.body.__name__)}},
        }
    operation["security"] = [{"bearer": []}] if op.auth else []
    return operation


def _version() -> str:
    try:
        return version("broadcaster")
    except PackageNotFoundError:
        return "0"


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process)."""
    paths: dict[str, dict[str, Schema]] = {}
    for op in (*OPERATIONS, *ALERT_OPERATIONS):
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "broadcaster API",
            "version": _version(),
            "description": "Admin REST API (``/api/v1``, bearer tokens from ``broadcaster create-token``) and "
            "the public Statuspage-compatible API (``/api/v2``). Errors are always "
            '``{"error": {"code", "message", "fields"}}``.',
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": V1}, {"name": PLAYBOOKS}, {"name": ALERTS}, {"name": V2}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from `broadcaster create-token --name NAME`",
                }
            },
            "schemas": {**RESPONSE_SCHEMAS, **ALERT_SCHEMAS, **PAGE_SCHEMAS, **LIST_SCHEMAS, **_request_schemas()},
        },
    }


# --- the rendered reference ---------------------------------------------------------------


def _schema_text(schema: Schema) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False)


def render_html(doc: dict[str, Any]) -> str:
    """The reference page: every operation with its parameters, body and answers; then the schemas."""
    e = html.escape
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{e(doc['info']['title'])} reference</title>",
        "<meta name=viewport content='width=device-width, initial-scale=1'>",
        "<link rel=stylesheet href='/api/docs.css'></head><body><main>",
        f"<h1>{e(doc['info']['title'])} <small>{e(doc['info']['version'])}</small></h1>",
        f"<p>{e(doc['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/api/openapi.json'>/api/openapi.json</a> (OpenAPI 3.1).</p>",
    ]
    for tag in doc["tags"]:
        out.append(f"<h2>{e(tag['name'])}</h2>")
        for path, methods in doc["paths"].items():
            for method, op in methods.items():
                if tag["name"] not in op["tags"]:
                    continue
                anchor = e(op["operationId"])
                out.append(
                    f"<section class=op id='{anchor}'><h3><a href='#{anchor}'>"
                    f"<span class='method {method}'>{method.upper()}</span> <code>{e(path)}</code></a></h3>"
                )
                out.append(f"<p>{e(op['summary'])}{' (bearer token)' if op['security'] else ''}</p>")
                if op.get("description"):
                    out.append(f"<p>{e(op['description'])}</p>")
                if op.get("parameters"):
                    out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>")
                    for p in op["parameters"]:
                        out.append(
                            f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
                            f"<td>{e(str(p['schema'].get('type')))}</td>"
                            f"<td>{e(p.get('description', ''))}</td></tr>"
                        )
                    out.append("</table>")
                if "requestBody" in op:
                    name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                    out.append(f"<p>Body: <a href='#schema-{e(name)}'><code>{e(name)}</code></a> (JSON)</p>")
                out.append("<ul class=answers>")
                for status, answer in op["responses"].items():
                    schema = answer.get("content", {}).get("application/json", {}).get("schema")
                    link = ""
                    if schema:
                        name = schema["$ref"].rsplit("/", 1)[1]
                        link = f" → <a href='#schema-{e(name)}'><code>{e(name)}</code></a>"
                    out.append(f"<li><b>{e(status)}</b> {e(answer['description'])}{link}</li>")
                out.append("</ul></section>")
    out.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        out.append(
            f"<section class=schema id='schema-{e(name)}'><h3>{e(name)}</h3>"
            f"<pre>{e(_schema_text(schema))}</pre></section>"
        )
    out.append("</main></body></html>")
    return "\n".join(out)


DOCS_CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2430;background:#fafbfc}
main{max-width:60rem;margin:0 auto;padding:1rem 1.5rem}
h1 small{font-size:.5em;color:#667}
.op{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:.2rem 1rem;margin:.8rem 0}
.op h3 a{color:inherit;text-decoration:none}
.method{display:inline-block;min-width:4.2em;font-size:.8em;padding:.1em .4em;border-radius:3px;color:#fff;
background:#3a6ea5;text-align:center}
.method.post{background:#2e7d32}.method.patch{background:#8d6e00}.method.delete{background:#b3261e}
table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:.2em .6em;text-align:left}
pre{background:#f3f5f7;padding:.6rem;overflow:auto;font-size:.85em}
"""


@lru_cache(maxsize=1)
def _html_bytes() -> bytes:
    return render_html(document()).encode()


async def openapi_json(request: Request) -> Response:
    body = json.dumps(document(), ensure_ascii=False).encode()
    return Response(
        body,
        media_type="application/json",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"},
    )


async def docs_page(request: Request) -> Response:
    return HTMLResponse(_html_bytes(), headers={"Cache-Control": "public, max-age=300"})


async def docs_css(request: Request) -> Response:
    return Response(DOCS_CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})


routes = [
    Route("/api/openapi.json", openapi_json, methods=["GET", "HEAD"]),
    Route("/api/docs", docs_page, methods=["GET", "HEAD"]),
    Route("/api/docs.css", docs_css, methods=["GET", "HEAD"]),
]
