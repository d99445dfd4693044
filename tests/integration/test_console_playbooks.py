"""The playbook screens over HTTP: roles, CSRF, audit, and every page rendering with the sample set."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from broadcaster.crisis import playbook_yaml
from broadcaster.db import audit_log, incidents
from broadcaster.runtime import Runtime
from tests.integration.test_console import login

LINK = re.compile(r'href="(/console/playbooks/[a-z0-9]{12})"')


async def test_screens_roles_and_audit(app: Any, client: httpx.AsyncClient, runtime: Runtime) -> None:
    async with runtime.engine.begin() as conn:
        await playbook_yaml.load_sample(conn)
    csrf = await login(client, runtime, "ic", "commander")
    listing = await client.get("/console/playbooks")
    assert listing.status_code == 200 and "Product recall" in listing.text
    first = LINK.search(listing.text)
    assert first
    detail = await client.get(first.group(1))
    assert detail.status_code == 200 and "Open and notify the contacts" in detail.text
    playbook_id = first.group(1).rsplit("/", 1)[1]
    for path in ("/console/contacts", "/console/drills", "/console"):
        page = await client.get(path)
        assert page.status_code == 200, path
    assert 'href="/console/playbooks"' in (await client.get("/console")).text

    created = await client.post(
        "/console/contacts",
        data={"csrf_token": csrf, "name": "Eve Ops", "role": "SRE", "email": "eve@example.com", "groups": "sre, night"},
    )
    assert created.status_code == 303
    bad = await client.post("/console/contacts", data={"csrf_token": csrf, "name": "No Way", "phone": "12"})
    assert bad.status_code == 422 and "phone" in bad.json()["error"]["fields"]
    assigned = await client.post(
        f"/console/playbooks/{playbook_id}/levels/1/contacts", data={"csrf_token": csrf, "group": "sre"}
    )
    assert assigned.status_code == 303
    assert "Eve Ops" in (await client.get(f"/console/playbooks/{playbook_id}")).text
    level = await client.post(
        f"/console/playbooks/{playbook_id}/levels",
        data={
            "csrf_token": csrf,
            "level": "5",
            "name": "Worst",
            "title": "Everything down",
            "status": "investigating",
            "message": "All down.",
            "channels": ["status_page", "email"],
            "cadence_minutes": "15",
        },
    )
    assert level.status_code == 303
    opened = await client.post(
        f"/console/playbooks/{playbook_id}/open", data={"csrf_token": csrf, "level": "5", "drill": "1"}
    )
    assert opened.status_code == 303
    incident_id = opened.headers["location"].rsplit("/", 1)[1]
    async with runtime.engine.connect() as conn:
        drill = (
            await conn.execute(select(incidents.c.drill, incidents.c.name).where(incidents.c.id == incident_id))
        ).one()
    assert tuple(drill) == (True, "Everything down")
    for path in (
        f"/console/playbooks/incidents/{incident_id}",
        f"/console/drills/{incident_id}/page",
        f"/console/drills/{incident_id}/report",
    ):
        page = await client.get(path)
        assert page.status_code == 200 and "Everything down" in page.text, path
    assert "Everything down" in (await client.get("/console/drills")).text

    # Commanders edit; only admins remove contacts; no CSRF, no change.
    contacts_page = (await client.get("/console/contacts")).text
    eve = re.search(r'action="/console/contacts/([a-z0-9]{12})/delete"', contacts_page)
    assert eve is None, "the remove button is for admins"
    assert (await client.post(f"/console/playbooks/{playbook_id}/delete", data={})).status_code == 403
    viewer = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test")
    async with viewer:
        viewer_csrf = await login(viewer, runtime, "watcher", "viewer")
        refused = await viewer.post(
            f"/console/playbooks/{playbook_id}/open", data={"csrf_token": viewer_csrf, "level": "1"}
        )
        assert refused.status_code == 403
    admin = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test")
    async with admin:
        admin_csrf = await login(admin, runtime, "root", "admin")
        page = (await admin.get("/console/contacts")).text
        target = re.search(r'action="/console/contacts/([a-z0-9]{12})/delete"', page)
        assert target
        commander_try = await client.post(f"/console/contacts/{target.group(1)}/delete", data={"csrf_token": csrf})
        assert commander_try.status_code == 403
        removed = await admin.post(f"/console/contacts/{target.group(1)}/delete", data={"csrf_token": admin_csrf})
        assert removed.status_code == 303
    async with runtime.engine.connect() as conn:
        actions = {r.action for r in await conn.execute(select(audit_log.c.action))}
    assert {
        "contact.create",
        "playbook.contacts.assign",
        "playbook.level.save",
        "playbook.drill",
        "contact.delete",
    } <= actions
