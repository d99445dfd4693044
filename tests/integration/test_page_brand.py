"""The page's brand end to end: PATCH /api/v1/page, then the page, the mirror, the subscribe pages,
a confirmation mail (real SMTP, real worker) and the desk all carry it; refusals name the field."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.crisis import playbook_yaml
from broadcaster.db import audit_log
from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from sandbox.smtp import RecordingSMTP, recording_smtp
from status_page.public.static_export import export_site
from tests.conftest import make_settings, run_worker
from tests.integration.test_desk import login, make_user
from tests.unit.test_brand_checks import HOSTILE_SVG

LINKS = [
    {"label": "Support", "url": "https://help.acme.example"},
    {"label": "Privacy", "url": "https://acme.example/p"},
]
BRAND = {
    "name": "ACME Status",
    "description": "Live status of ACME's shop and API.",
    "accent_color": "#0b5cad",
    "links": LINKS,
    "logo": "data:image/svg+xml;base64," + base64.b64encode(HOSTILE_SVG).decode(),
}


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
def settings(database_url: str, clean_database: None, smtp: RecordingSMTP) -> Settings:
    return make_settings(database_url, **smtp.settings())


async def patch(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.patch("/api/v1/page", headers=auth, json=body)


def error_fields(response: httpx.Response) -> dict[str, str]:
    fields: dict[str, str] = response.json()["error"]["fields"]
    return fields


def shows_brand(html: str, home: str = "/") -> None:
    """``home``: the front page's link, ``index.html`` on the mirror (whose links are relative)."""
    assets = "/assets/" if home == "/" else "assets/"
    assert f'<h1><a href="{home}"><img class="logo" src="data:image/svg+xml;base64,' in html
    assert "ACME Status" in html and "Live status of ACME" in html
    for link in LINKS:
        assert f'<a href="{link["url"]}">{link["label"]}</a>' in html
    assert re.search(rf'<link rel="stylesheet" href="{assets}brand\.[0-9a-f]{{12}}\.css">', html)


async def test_brand_reaches_page_mirror_subscribe_pages_confirmation_mail_and_desk(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings, runtime: Runtime, smtp: RecordingSMTP, tmp_path
) -> None:
    response = await patch(client, auth, **BRAND)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["name"] == "ACME Status" and page["accent_color"] == "#0b5cad" and page["links"] == LINKS
    assert page["logo"]["content_type"] == "image/svg+xml"
    logo = await client.get(page["logo"]["url"].removeprefix(settings.public_url))
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/svg+xml"
    assert b"<rect" in logo.content and b"script" not in logo.content and b"evil.example" not in logo.content
    assert (await client.get("/api/v1/page", headers=auth)).json() == page

    html = (await client.get("/")).text
    shows_brand(html)
    sheet_url = re.search(r'href="(/assets/brand\.[0-9a-f]{12}\.css)"', html)
    assert sheet_url is not None
    sheet = await client.get(sheet_url.group(1))
    assert sheet.text.startswith(":root{--link:#0b5cad;--accent:#0b5cad}")
    v2 = (await client.get("/api/v2/summary.json")).json()
    assert v2["page"]["name"] == "ACME Status" and "contact_channels" not in v2["page"]

    assert await export_site(settings, runtime.engine, tmp_path) > 0
    mirrored = (tmp_path / "index.html").read_text()
    shows_brand(mirrored, home="index.html")
    assert (tmp_path / sheet_url.group(1).lstrip("/")).read_bytes() == sheet.content
    assert (tmp_path / page["logo"]["url"].removeprefix(f"{settings.public_url}/")).read_bytes() == logo.content

    form = (await client.get("/subscribe")).text
    assert 'src="data:image/svg+xml;base64,' in form and sheet_url.group(1) in form and "· ACME Status</title>" in form
    signed_up = await client.post("/subscribe", json={"email": "fan@example.org"})
    assert signed_up.status_code == 202, signed_up.text
    await run_worker(settings)
    mail = next(r.message for r in smtp.received if "fan@example.org" in r.rcpt_tos)
    assert mail["Subject"] == "Confirm your subscription to ACME Status"
    body = mail.get_body(preferencelist=("html",))
    assert body is not None
    html_mail = str(body.get_content())
    assert f'<img src="{page["logo"]["url"]}" alt="ACME Status"' in html_mail
    assert "background-color:#0b5cad" in html_mail and "#175cd3" not in html_mail

    preview = await client.post(
        "/api/v1/preview", headers=auth, json={"title": "Checkout down", "status": "investigating", "message": "Down."}
    )
    update_mail = preview.json()["email"]
    assert f'<img src="{page["logo"]["url"]}" alt=""' in update_mail["html"] and "ACME Status" in update_mail["text"]
    assert "background-color:#0b5cad" in update_mail["html"], "the accent colours the update mail's button"

    await make_user(runtime, "ana", "agent")
    await login(client, "ana")
    desk = (await client.get("/desk")).text
    assert '<span class="page-name"><img class="logo" src="data:image/svg+xml;base64,' in desk
    assert "ACME Status</span>" in desk

    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log).where(audit_log.c.action == "page.brand"))).mappings().all()
    assert len(rows) == 1 and rows[0]["actor"] == "token:tests"
    assert rows[0]["details"]["fields"] == sorted(BRAND)


async def test_refusals_name_the_field(client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime) -> None:
    pale = await patch(client, auth, accent_color="#8a8a8a")
    assert pale.status_code == 422
    assert list(error_fields(pale)) == ["accent_color"]
    assert re.search(r"contrast 3\.\d\d:1 against the page background #ffffff", error_fields(pale)["accent_color"])

    ten_kb = (".card{border-radius:2px}\n" * 410).strip()  # strings are stripped, as every input is
    kept = await patch(client, auth, custom_css=ten_kb)
    assert kept.status_code == 200, kept.text
    sheet = await client.get(kept.json()["stylesheet_url"].removeprefix("http://status.test"))
    assert sheet.status_code == 200 and sheet.text == ten_kb
    assert sheet.headers["content-type"] == "text/css; charset=utf-8"
    assert sheet.headers["cache-control"] == "public, max-age=31536000, immutable"
    csp = (await client.get("/")).headers["content-security-policy"]
    # only this origin's files and the page's own inline CSS, by its hash
    assert re.search(r"style-src 'self' 'sha256-[A-Za-z0-9+/]+=*';", csp) and "unsafe-inline" not in csp, csp

    huge = await patch(client, auth, custom_css="a{color:red}\n" * 16_000)  # 208 KB
    assert huge.status_code == 422 and "limit is 65536" in error_fields(huge)["custom_css"]
    evil = await patch(client, auth, custom_css="@import url(https://evil.example/x.css);\na{color:red}")
    assert evil.status_code == 422 and "@import" in error_fields(evil)["custom_css"]
    assert (await client.get("/api/v1/page", headers=auth)).json()["custom_css"] == ten_kb, "refusals change nothing"

    for body, field in (
        ({"logo": "data:image/gif;base64,R0lGODlh"}, "logo"),
        (
            {"favicon": "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 5000).decode()},
            "favicon",
        ),
        ({"links": [{"label": "Terms", "url": "javascript:alert(1)"}]}, "links.0.url"),
        ({"colour": "#000000"}, "colour"),
    ):
        refused = await patch(client, auth, **body)
        assert refused.status_code == 422 and field in error_fields(refused), refused.text

    async with runtime.engine.begin() as conn:
        commander = await create_token(conn, "cmd", role="commander")
    forbidden = await patch(client, {"Authorization": f"Bearer {commander}"}, name="Nope")
    assert forbidden.status_code == 403


async def test_brand_travels_with_the_playbooks_yaml(client: httpx.AsyncClient, auth, runtime: Runtime) -> None:
    assert (await patch(client, auth, **BRAND, custom_css="a{text-decoration:underline}")).status_code == 200
    async with runtime.engine.connect() as conn:
        exported = await playbook_yaml.export_yaml(conn)
    doc = yaml.safe_load(exported)
    assert doc["page"]["name"] == "ACME Status" and doc["page"]["logo"].startswith("data:image/svg+xml;base64,")
    assert (await patch(client, auth, name=None, links=[], logo=None, custom_css="")).status_code == 200
    async with runtime.engine.begin() as conn:
        counts = await playbook_yaml.import_yaml(conn, exported)
    assert counts["page"] == 1
    async with runtime.engine.connect() as conn:
        assert await playbook_yaml.export_yaml(conn) == exported, "export -> import -> export is stable"
    page = (await client.get("/api/v1/page", headers=auth)).json()
    assert page["name"] == "ACME Status" and page["links"] == LINKS and page["custom_css"].startswith("a{")
