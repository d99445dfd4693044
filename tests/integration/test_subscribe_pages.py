"""The sign-up pages and their edges: the form, webhook sign-ups, and Redis being down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import subscribers
from sandbox.serve import free_port
from sandbox.smtp import RecordingSMTP, recording_smtp
from status_page.app import create_app
from tests.conftest import make_settings


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
def settings(database_url: str, clean_database: None, smtp: RecordingSMTP) -> Settings:
    return make_settings(database_url, **smtp.settings(), webhook_allow_private=False)


@pytest.fixture
async def redis_down_client(
    database_url: str, clean_database: None, smtp: RecordingSMTP
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        **smtp.settings(),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        twilio_account_sid="AC" + "a" * 32,
        twilio_auth_token="token",
        twilio_from="+15005550006",
        twilio_base_url=f"http://127.0.0.1:{free_port()}",
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
    ):
        yield client


async def test_form_page_lists_components(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await client.post("/api/v1/components", headers=auth, json={"name": "API", "group": "Platform"})
    page = await client.get("/subscribe")
    assert page.status_code == 200
    assert 'name="email"' in page.text and "Platform - API" in page.text
    assert 'name="phone"' not in page.text, "SMS is not configured here"
    assert "<style" not in page.text and 'href="/subscribe/style.css"' in page.text
    css = await client.get("/subscribe/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    sms = await client.post("/subscribe", json={"phone": "+14155550100"})
    assert sms.status_code == 422 and sms.json()["error"]["fields"] == {"phone": "sms is not enabled here"}
    unknown = await client.post("/subscribe", json={"email": "a@example.org", "components": ["nope"]})
    assert unknown.status_code == 422 and "components.nope" in unknown.json()["error"]["fields"]


async def test_public_webhook_sign_up_waits_for_an_admin(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Any
) -> None:
    private = await client.post("/subscribe", json={"webhook": "http://127.0.0.1:9/hook"})
    assert private.status_code == 422 and "webhook" in private.json()["error"]["fields"]
    first = await client.post("/subscribe", json={"webhook": "https://93.184.215.14/hook"})
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "pending_approval" and first.json()["secret"].startswith("whsec_")
    again = await client.post("/subscribe", json={"webhook": "https://93.184.215.14/hook"})
    assert again.status_code == 202 and "secret" not in again.json(), "the secret is shown once"
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(subscribers))).one()
    assert not row.confirmed
    approved = await client.post(
        "/api/v1/subscribers",
        headers=auth,
        json={"channel": "webhook", "address": "https://93.184.215.14/hook", "confirmed": True},
    )
    assert approved.status_code == 200 and approved.json()["confirmed"]


async def test_redis_down_email_confirmation_is_sent_inline(
    redis_down_client: httpx.AsyncClient, smtp: RecordingSMTP
) -> None:
    response = await redis_down_client.post("/subscribe", json={"email": "inline@example.org"})
    assert response.status_code == 202, response.text
    assert [r.rcpt_tos for r in smtp.received] == [("inline@example.org",)]


async def test_redis_down_sms_sign_up_is_refused(redis_down_client: httpx.AsyncClient) -> None:
    response = await redis_down_client.post("/subscribe", json={"phone": "+14155550100"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
