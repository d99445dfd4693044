"""Hostile input and honest health (issue 17, acceptance 7), on SQLite and PostgreSQL alike.

NUL (which PostgreSQL cannot store in text) anywhere in a URL, a JSON body, a form or YAML is
a 4xx naming where it is, never a 500; deep or non-standard JSON is a 400; ``/healthz``
answers 503 with a generic message on a database that takes no writes; ``/metrics`` labels
odd methods ``other``; webhook URLs never reach the log; contacts' email and phone are for
commanders and admins only.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.routing import Route

from broadcaster.config import Settings
from broadcaster.crisis import contacts
from broadcaster.crisis.playbook_yaml import import_yaml
from broadcaster.db.migrate import upgrade
from broadcaster.errors import InputError
from broadcaster.logs import QUIET_LOGGERS, configure_logging, logging_config
from broadcaster.runtime import Runtime
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from status_page.app import create_app
from status_page.metrics import METHODS, OTHER_METHOD
from tests.conftest import PG_ADMIN_DSN, backend, make_settings, run_worker
from tests.integration.test_fanout_webhooks import open_incident, subscribe_webhook
from tests.integration.test_metrics import by_name, scrape
from tests.security.helpers import CSRF, login

PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
NUL = "a%00b"  # in a URL
OK_INCIDENT = {"title": "Outage", "status": "investigating", "message": "Looking into it.", "channels": []}


def routes_of(app: Any) -> list[Route]:
    return [route for route in app.routes if isinstance(route, Route)]


def with_nul_in(template: str, name: str) -> str:
    """The route's path with a NUL in parameter ``name`` and a plain value in the others."""
    return PARAM.sub(lambda m: NUL if m.group(1) == name else "1" if m.group(2) == "int" else "x1", template)


async def as_admin(client: httpx.AsyncClient, runtime: Runtime) -> dict[str, str]:
    """Log the client in as an admin; the headers that pass CSRF for its session."""
    await login(client, runtime, "root", "admin")
    token = CSRF.search((await client.get("/console/contacts")).text)
    assert token
    return {"X-CSRF-Token": token.group(1)}


# --- NUL in the URL -----------------------------------------------------------------------------


async def test_nul_in_any_path_parameter_is_a_404_naming_it(
    app: Any, client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    headers = auth | await as_admin(client, runtime)
    answers = []
    for route in routes_of(app):
        names = [m.group(1) for m in PARAM.finditer(route.path) if ":" not in m.group(0)]
        for name in names:
            path = with_nul_in(route.path, name)
            for method in sorted((route.methods or set()) - {"HEAD"}):
                response = await client.request(method, path, headers=headers, json={})
                answers.append((method, route.path, name, response.status_code, response.json()["error"]["fields"]))
    assert len(answers) >= 40, "every parameterised route was tried"
    wrong = [a for a in answers if a[3] != 404 or a[2] not in a[4]]
    assert wrong == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/subscribers?channel=",
        "/api/v1/deadletter?update_id=",
        "/api/v1/deadletter?channel=",
        "/api/v1/audit?before=",
        "/api/v1/incidents?limit=",
        "/desk/search?q=",
        "/subscriptions/confirm?token=",
        "/unsubscribe?token=",
        "/subscriptions/manage?token=",
        "/ack?token=",
        "/console/audit?before=",
        "/login?next=",
        "/history?page=",
    ],
)
async def test_nul_in_a_query_parameter_is_a_400_naming_it(
    client: httpx.AsyncClient, auth: dict[str, str], path: str
) -> None:
    response = await client.get(path + NUL, headers=auth)
    assert response.status_code == 400, response.text
    assert path.rsplit("?", 1)[1].rstrip("=") in response.json()["error"]["fields"]


# --- NUL in bodies ------------------------------------------------------------------------------

# (method, path, JSON body, the field named)
NUL_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/incidents", {**OK_INCIDENT, "title": "Out\x00age"}, "title"),
    ("POST", "/api/v1/incidents", {**OK_INCIDENT, "message": "a\x00"}, "message"),
    ("POST", "/api/v1/incidents", {**OK_INCIDENT, "components": {"ab\x00": "major_outage"}}, "components"),
    ("POST", "/api/v1/incidents", {**OK_INCIDENT, "agent": {"talking_points": "\x00"}}, "agent.talking_points"),
    ("POST", "/api/v1/components", {"name": "API\x00"}, "name"),
    ("POST", "/api/v1/components", {"name": "API", "group": "\x00"}, "group"),
    ("POST", "/api/v1/subscribers", {"channel": "email", "address": "a\x00@example.org"}, "address"),
    (
        "POST",
        "/api/v1/subscribers",
        {"channel": "email", "address": "a@example.org", "components": ["\x00"]},
        "components.0",
    ),
    ("POST", "/api/v1/preview", {"title": "T\x00", "message": "m"}, "title"),
    ("POST", "/api/v1/incidents/x1/updates", {"status": "identified", "message": "\x00"}, "message"),
    ("POST", "/subscribe", {"email": "a\x00@example.org"}, "email"),
    ("POST", "/subscribe", {"email": "a@example.org", "components": ["\x00"]}, "components.0"),
    ("POST", "/subscribe/confirm", {"phone": "+14155550100\x00", "code": "123456"}, "phone"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), NUL_BODIES, ids=[f"{m} {p} {f}" for m, p, _, f in NUL_BODIES]
)
async def test_nul_in_a_json_body_is_a_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.request(method, path, headers=auth, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"], response.json()


async def test_nul_in_forms_is_a_422_naming_the_field(client: httpx.AsyncClient, runtime: Runtime) -> None:
    public = await client.post("/subscribe", data={"email": "a\x00@example.org"})
    assert public.status_code == 422 and "email" in public.json()["error"]["fields"]
    headers = await as_admin(client, runtime)
    for path, form, field in [
        ("/console/contacts", {"name": "Ann\x00", "role": "CTO"}, "name"),
        ("/console/templates", {"name": "T\x00", "title": "x", "message": "m"}, "name"),
        ("/console/drills/audience", {"channel": "webhook", "address": "https://a.test/\x00"}, "address"),
    ]:
        response = await client.post(path, headers=headers, data=form)
        assert response.status_code == 422 and field in response.json()["error"]["fields"], (path, response.text)


async def test_nul_in_the_patch_of_a_real_component(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await client.post("/api/v1/components", headers=auth, json={"name": "API"})
    response = await client.patch(f"/api/v1/components/{created.json()['id']}", headers=auth, json={"name": "A\x00PI"})
    assert response.status_code == 422 and "name" in response.json()["error"]["fields"]


async def test_nul_in_imported_yaml_names_the_field(runtime: Runtime) -> None:
    text = 'version: 1\ncontacts:\n  - name: "Ann\\0"\n    role: CTO\n'
    async with runtime.engine.begin() as conn:
        with pytest.raises(InputError) as caught:
            await import_yaml(conn, text)
    assert any("name" in field for field in caught.value.fields), caught.value.fields


# --- deep and odd JSON --------------------------------------------------------------------------

DEEP = 30_000
ODD_JSON = {
    "30,000 nested arrays": "[" * DEEP + "]" * DEEP,
    "12,000 nested objects": '{"":' * 12_000 + "1" + "}" * 12_000,  # (30,000 would be over 64 KiB: 413)
    "65 nested, under the stack limit": '{"title": "x", "message": "y", "agent": ' + "[" * 65 + "]" * 65 + "}",
    "NaN": '{"title": "x", "message": "y", "position": NaN}',
    "Infinity": '{"title": "x", "message": "y", "next_update_in_minutes": -Infinity}',
}


@pytest.mark.parametrize("path", ["/api/v1/incidents", "/api/v1/components", "/subscribe"])
@pytest.mark.parametrize("name", list(ODD_JSON))
async def test_deep_or_odd_json_is_a_400(client: httpx.AsyncClient, auth: dict[str, str], path: str, name: str) -> None:
    response = await client.post(path, headers=auth | {"content-type": "application/json"}, content=ODD_JSON[name])
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["fields"] == {"body": "nested too deeply" if "nested" in name else "malformed JSON"}


# --- /healthz -----------------------------------------------------------------------------------


@pytest.fixture
def read_only_url(tmp_path: Path) -> Iterator[str]:
    """A migrated database this process may read but not write."""
    if backend() != "postgres":
        path = tmp_path / "ro.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        yield f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
        return
    name = f"bc_ro_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    upgrade(url)
    asyncio.run(admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def read_only_client(read_only_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(read_only_url)
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
        ):
            yield client
    finally:
        await runtime.aclose()


async def test_healthz_probes_a_write(
    client: httpx.AsyncClient, read_only_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = await client.get("/healthz")
    assert healthy.status_code == 200 and healthy.json()["database"] == "ok"
    assert (await read_only_client.get("/api/v2/status.json")).status_code == 200, "reads still work"
    response = await read_only_client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unavailable"}, "a generic answer, not the DB's error"
    assert any("read" in r.getMessage().lower() for r in caplog.records), "the reason is in the log"
    again = await client.get("/healthz")
    assert again.status_code == 200, "the probe left nothing behind"


# --- /metrics -----------------------------------------------------------------------------------


async def test_odd_methods_are_labelled_other(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for method in ("BREW", "PROPFIND", "PURGE", "X" * 200, "DELETE"):  # (httpx sends methods upper-cased)
        await client.request(method, "/api/v1/incidents", headers=auth)
    http = by_name(await scrape(client), "broadcaster_http_request_duration_seconds_count")
    methods = {dict(labels)["method"] for labels in http}
    assert methods <= METHODS | {OTHER_METHOD}, methods
    assert http[(("method", OTHER_METHOD), ("route", "/api/v1/incidents"), ("status", "405"))] == 4
    assert http[(("method", "DELETE"), ("route", "/api/v1/incidents"), ("status", "405"))] == 1


# --- logs ---------------------------------------------------------------------------------------


async def test_a_webhook_delivery_logs_no_url(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in QUIET_LOGGERS})
    receiver = WebhookReceiver()
    try:
        async with serve_app(receiver.app()) as base:
            await subscribe_webhook(client, auth, f"{base}/hook?token=hook-secret-0123456789")
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.NOTSET)
            root.addHandler(logging.StreamHandler(before := io.StringIO()))
            root.setLevel(logging.INFO)
            await open_incident(client, auth)
            await run_worker(settings)
            assert "hook-secret-0123456789" in before.getvalue(), "httpx alone logs the URL: the test can fail"

            configure_logging("text", "DEBUG")  # what every broadcaster process runs, at its most talkative
            root.addHandler(logging.StreamHandler(after := io.StringIO()))
            await open_incident(client, auth)
            await run_worker(settings)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    assert len(receiver.received) == 2
    assert "batch " in after.getvalue(), "the delivery was logged (a DEBUG line)"
    assert " on webhook: 1 sent, 0 failed" in after.getvalue(), "and its end (an INFO line)"
    assert "hook-secret-0123456789" not in after.getvalue() and base not in after.getvalue()
    servers = logging_config("json")["loggers"]  # what granian and uvicorn apply in each web process
    assert all(servers[name]["level"] == "WARNING" for name in QUIET_LOGGERS)


# --- contacts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "sees_details"), [("viewer", False), ("agent", False), ("commander", True), ("admin", True)]
)
async def test_contact_details_are_for_commanders(
    client: httpx.AsyncClient, runtime: Runtime, role: str, sees_details: bool
) -> None:
    async with runtime.engine.begin() as conn:
        await contacts.create_contact(
            conn,
            contacts.ContactIn(
                name="Ann Oncall",
                role="Head of comms",
                email="ann@example.org",
                phone="+14155550123",
                groups=["exec-bridge"],
            ),
        )
    await login(client, runtime, f"a-{role}", role)
    page = await client.get("/console/contacts")
    assert page.status_code == 200
    assert "Ann Oncall" in page.text and "Head of comms" in page.text
    for detail in ("ann@example.org", "+14155550123", "4155550123", "exec-bridge"):
        assert (detail in page.text) == sees_details, detail
