"""API token roles hold: every /api/v1 route × every role, revocation, expiry, and no secret in listings."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from broadcaster.db import api_tokens, utcnow
from broadcaster.domain.tokens import create_token
from broadcaster.models import ROLE_RANK, Role
from broadcaster.runtime import Runtime

# The minimum role of every admin API route: the contract. A new route must be added here.
MINIMUM: dict[tuple[str, str], Role] = {
    ("GET", "/api/v1/components"): Role.VIEWER,
    ("POST", "/api/v1/components"): Role.COMMANDER,
    ("PATCH", "/api/v1/components/{component_id}"): Role.COMMANDER,
    ("GET", "/api/v1/incidents"): Role.VIEWER,
    ("POST", "/api/v1/incidents"): Role.COMMANDER,
    ("GET", "/api/v1/incidents/{incident_id}"): Role.VIEWER,
    ("PATCH", "/api/v1/incidents/{incident_id}"): Role.COMMANDER,
    ("POST", "/api/v1/incidents/{incident_id}/updates"): Role.COMMANDER,
    ("POST", "/api/v1/preview"): Role.COMMANDER,
    ("GET", "/api/v1/updates/{update_id}/deliveries"): Role.VIEWER,
    ("GET", "/api/v1/updates/{update_id}/failures"): Role.COMMANDER,
    ("POST", "/api/v1/updates/{update_id}/deliveries/retry"): Role.COMMANDER,
    ("GET", "/api/v1/deadletter"): Role.COMMANDER,
    ("GET", "/api/v1/channels"): Role.VIEWER,
    ("GET", "/api/v1/channels/health"): Role.ADMIN,
    ("GET", "/api/v1/subscribers"): Role.ADMIN,
    ("POST", "/api/v1/subscribers"): Role.ADMIN,
    ("DELETE", "/api/v1/subscribers/{subscriber_id}"): Role.ADMIN,
    ("GET", "/api/v1/subscribers.csv"): Role.ADMIN,
    ("GET", "/api/v1/playbooks"): Role.VIEWER,
    ("POST", "/api/v1/playbooks/{playbook_id}/open"): Role.COMMANDER,
    ("POST", "/api/v1/incidents/{incident_id}/level"): Role.COMMANDER,
    ("GET", "/api/v1/incidents/{incident_id}/contacts"): Role.COMMANDER,
    ("GET", "/api/v1/incidents/{incident_id}/report"): Role.VIEWER,
    ("GET", "/api/v1/audit"): Role.ADMIN,
    ("GET", "/api/v1/tokens"): Role.ADMIN,
    ("DELETE", "/api/v1/tokens/{token_id}"): Role.ADMIN,
    ("POST", "/api/v1/alerts/{source}"): Role.COMMANDER,  # with a bearer token; PagerDuty signs instead
    ("GET", "/api/v1/alert-rules"): Role.VIEWER,
    ("POST", "/api/v1/alert-rules"): Role.COMMANDER,
    ("DELETE", "/api/v1/alert-rules/{rule_id}"): Role.COMMANDER,
    ("GET", "/api/v1/drafts"): Role.VIEWER,
    ("POST", "/api/v1/drafts/{draft_id}/publish"): Role.COMMANDER,
    ("DELETE", "/api/v1/drafts/{draft_id}"): Role.COMMANDER,
    ("GET", "/api/v1/page"): Role.VIEWER,
    ("PATCH", "/api/v1/page"): Role.ADMIN,
    ("PUT", "/api/v1/page/contact-channels"): Role.COMMANDER,
}


def api_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/v1/") and path != "/api/v1/alerts":
            found.update((method, path) for method in (route.methods or ()) if method != "HEAD")
    return found


async def tokens_by_role(runtime: Runtime) -> dict[Role, str]:
    async with runtime.engine.begin() as conn:
        return {role: await create_token(conn, f"t-{role.value}", role.value) for role in Role}


async def test_every_route_declares_its_minimum(app: Any, client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code in (200, 503)  # the app has started its listeners
    assert api_routes(app) == set(MINIMUM), "a v1 route without a declared minimum role (or a stale entry)"


@pytest.mark.parametrize(("method", "path"), sorted(MINIMUM))
async def test_route_by_role(method: str, path: str, client: httpx.AsyncClient, runtime: Runtime) -> None:
    secrets = await tokens_by_role(runtime)
    url = re.sub(r"\{[^}]+\}", "nonexistent", path)
    for role, secret in secrets.items():
        response = await client.request(
            method, url, headers={"Authorization": f"Bearer {secret}"}, json={} if method in ("POST", "PATCH") else None
        )
        allowed = ROLE_RANK[role] >= ROLE_RANK[MINIMUM[(method, path)]]
        if allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code, response.text)
            assert response.json()["error"]["code"] == "forbidden"
        assert response.status_code < 500, response.text
    anonymous = await client.request(method, url)
    assert anonymous.status_code == 401


async def test_viewer_cannot_write_and_admin_can(client: httpx.AsyncClient, runtime: Runtime) -> None:
    secrets = await tokens_by_role(runtime)
    body = {"title": "Down", "status": "investigating", "message": "x"}
    viewer = {"Authorization": f"Bearer {secrets[Role.VIEWER]}"}
    assert (await client.post("/api/v1/incidents", headers=viewer, json=body)).status_code == 403
    assert (
        await client.post(
            "/api/v1/subscribers",
            headers=viewer,
            json={"channel": "email", "address": "a@example.org", "confirmed": True},
        )
    ).status_code == 403
    assert (await client.get("/api/v1/subscribers", headers=viewer)).status_code == 403
    admin = {"Authorization": f"Bearer {secrets[Role.ADMIN]}"}
    assert (await client.post("/api/v1/incidents", headers=admin, json=body)).status_code == 201


async def test_revoked_and_expired_tokens_get_401_and_listings_hold_no_secret(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    secrets = await tokens_by_role(runtime)
    admin = {"Authorization": f"Bearer {secrets[Role.ADMIN]}"}
    viewer = {"Authorization": f"Bearer {secrets[Role.VIEWER]}"}
    assert (await client.get("/api/v1/components", headers=viewer)).status_code == 200
    listed = await client.get("/api/v1/tokens", headers=admin)
    assert listed.status_code == 200
    for secret in secrets.values():
        assert secret not in listed.text
    assert "token_hash" not in listed.text
    by_name = {t["name"]: t for t in listed.json()}
    assert by_name["t-admin"]["last_used_at"] is not None, "last use is kept"
    revoked = await client.delete(f"/api/v1/tokens/{by_name['t-viewer']['id']}", headers=admin)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/components", headers=viewer)).status_code == 401
    async with runtime.engine.begin() as conn:
        await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.name == "t-commander")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    commander = {"Authorization": f"Bearer {secrets[Role.COMMANDER]}"}
    assert (await client.get("/api/v1/components", headers=commander)).status_code == 401
    again = await client.delete(f"/api/v1/tokens/{by_name['t-viewer']['id']}", headers=admin)
    assert again.status_code == 404


async def test_a_token_made_to_expire_carries_its_expiry(runtime: Runtime) -> None:
    async with runtime.engine.begin() as conn:
        await create_token(conn, "short-lived", Role.VIEWER.value, expires_in_days=2)
        await create_token(conn, "lasting", Role.VIEWER.value)
        rows = {r.name: r.expires_at for r in await conn.execute(select(api_tokens.c.name, api_tokens.c.expires_at))}
    assert rows["lasting"] is None
    left = rows["short-lived"] - utcnow()
    assert timedelta(days=2) - timedelta(minutes=1) < left <= timedelta(days=2)
