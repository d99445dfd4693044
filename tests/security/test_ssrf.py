"""Webhook URLs may not point at loopback or private addresses (unless allowed), at sign-up and at delivery."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import deliveries, new_id, subscribers, utcnow
from broadcaster.runtime import Runtime
from broadcaster.security import new_webhook_secret
from channels.webhook import is_public_ip
from tests.conftest import run_worker
from tests.support.providers.webhook_receiver import WebhookReceiver
from tests.support.servers import serve_app

PRIVATE_URLS = [
    "https://127.0.0.1/hook", "https://localhost/hook", "https://10.0.0.5/hook", "https://192.168.1.1/hook",
    "https://172.16.0.1/hook", "https://169.254.169.254/latest/meta-data", "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook", "https://0.0.0.0/hook", "http://example.com/hook",
    "https://user:pass@example.com/hook",
]


@pytest.fixture
def strict_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private": False})


@pytest.fixture
async def strict_client(strict_settings: Settings) -> httpx.AsyncClient:  # type: ignore[misc]
    from asgi_lifespan import LifespanManager

    from broadcaster.domain.tokens import create_token
    from status_page.app import create_app

    runtime = Runtime.build(strict_settings)
    app = create_app(strict_settings, runtime)
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                       base_url="http://status.test") as client:
        async with runtime.engine.begin() as conn:
            client.headers["Authorization"] = f"Bearer {await create_token(conn, 'ssrf')}"
        yield client
    await runtime.aclose()


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_webhook_urls_are_refused_at_sign_up(strict_client: httpx.AsyncClient, url: str) -> None:
    api = await strict_client.post("/api/v1/subscribers", json={"channel": "webhook", "address": url,
                                                                 "confirmed": True})
    assert api.status_code == 422, (url, api.text)
    public = await strict_client.post("/subscribe", json={"webhook": url})
    assert public.status_code in (404, 422), (url, public.status_code)


def test_address_classes() -> None:
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.31.255.255", "169.254.169.254", "::1",
                    "fe80::1", "::ffff:10.0.0.1", "0.0.0.0", "224.0.0.1", "fc00::1"):
        assert not is_public_ip(address), address
    for address in ("93.184.216.34", "2606:2800:220:1::1", "1.1.1.1"):
        assert is_public_ip(address), address


async def test_delivery_rechecks_the_address(strict_settings: Settings, runtime: Runtime) -> None:
    """A URL that was public at sign-up but resolves to loopback now (DNS rebinding) is never called."""
    receiver = WebhookReceiver()
    async with serve_app(receiver.app()) as base:
        now = utcnow()
        async with runtime.engine.begin() as conn:  # stored as if it had passed the sign-up check
            await conn.execute(subscribers.insert().values(
                id=new_id(), channel="webhook", address=f"{base}/hook", confirmed=True, confirmed_at=now,
                created_at=now, secret=new_webhook_secret(), drill=False, meta={}))
        from tests.support.posting import post_body as post

        strict = Runtime.build(strict_settings)
        try:
            posted, _ = await post(strict, {"title": "x", "status": "investigating", "message": "x",
                                            "channels": ["webhook"]})
        finally:
            await strict.aclose()
        await run_worker(strict_settings)
    assert receiver.attempts == 0, "the worker called a loopback address"
    async with runtime.engine.connect() as conn:
        state, error = (await conn.execute(select(deliveries.c.state, deliveries.c.last_error)
                                           .where(deliveries.c.update_id == posted.update_id))).one()
    assert state == "failed" and "private or loopback" in error
