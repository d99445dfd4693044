"""The console's Page screen: contact channels flipped in one click, the list edited, the brand
uploaded as files; roles and CSRF hold, refusals show on the page."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from broadcaster.db import audit_log
from broadcaster.runtime import Runtime
from tests.integration.test_console import login
from tests.integration.test_contact_channels import eventually
from tests.unit.test_brand_checks import HOSTILE_SVG, PNG_BYTES

ROWS = {
    "name": ["Phone", "Chat", ""],
    "state": ["open", "open", "open"],
    "note": ["", "", ""],
    "url": ["tel:+441234567890", "", ""],
}


async def test_commander_flips_a_channel_in_one_click(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "cora", "commander")
    saved = await client.post("/console/page/contact", data={"csrf_token": csrf, **ROWS})
    assert saved.status_code == 303 and saved.headers["location"] == "/console/page?notice=contact"
    page = (await client.get("/console/page")).text
    assert 'aria-label="Phone: busy"' in page and "Only admins change the brand." in page

    flipped = await client.post("/console/page/contact/flip", data={"csrf_token": csrf, "index": "0", "state": "busy"})
    assert flipped.status_code == 303
    channels = (await client.get("/api/v2/status.json")).json()["page"]["contact_channels"]
    assert [(c["name"], c["state"]) for c in channels] == [("Phone", "busy"), ("Chat", "open")]
    assert channels[0]["url"] == "tel:+441234567890", "a flip keeps the rest of the channel"
    async with runtime.engine.connect() as conn:
        actors = (
            await conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "page.contact_channels"))
        ).scalars()
        assert list(actors) == ["user:cora", "user:cora"]

    twice = await client.post(
        "/console/page/contact", data={"csrf_token": csrf, **ROWS, "name": ["Phone", "phone", ""]}
    )
    assert twice.status_code == 422 and "channels.1.name" in twice.text and "phone is listed twice" in twice.text
    no_csrf = await client.post("/console/page/contact/flip", data={"index": "0", "state": "open"})
    assert no_csrf.status_code == 403
    refused = await client.post(
        "/console/page/brand", data={"csrf_token": csrf, "name": "X"}, files={"logo": ("l.png", PNG_BYTES)}
    )
    assert refused.status_code == 403, "the brand is the admins'"


async def test_admin_uploads_the_brand(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "ada", "admin")
    data = {
        "csrf_token": csrf,
        "name": "ACME Status",
        "accent_color": "#0b5cad",
        "link_label": ["Support", ""],
        "link_url": ["https://help.acme.example", ""],
        "custom_css": "header.site{border-bottom-width:3px}",
    }
    files = {"logo": ("logo.svg", HOSTILE_SVG, "image/svg+xml"), "favicon": ("f.png", PNG_BYTES, "image/png")}
    saved = await client.post("/console/page/brand", data=data, files=files)
    assert saved.status_code == 303, saved.text
    brand = (await client.get("/api/v1/page", headers={"Accept": "application/json"})).status_code
    assert brand == 401, "the API wants a token, not the session"
    home = (await client.get("/")).text
    assert 'src="data:image/svg+xml;base64,' in home and 'rel="icon" href="data:image/png;base64,' in home
    assert "ACME Status · Console" in (await client.get("/console/page")).text

    pale = await client.post("/console/page/brand", data={**data, "accent_color": "#aaaaaa"})
    assert pale.status_code == 422 and "accent_color" in pale.text and "2.32:1" in pale.text
    removed = await client.post("/console/page/brand", data={**data, "remove_logo": "1"})
    assert removed.status_code == 303

    async def logo_gone() -> bool:
        return 'class="logo"' not in (await client.get("/")).text

    await eventually(logo_gone)  # the page's cache hears of it through the event stream
