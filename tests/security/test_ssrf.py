"""Webhook URLs may not point at loopback or private addresses (unless allowed), at sign-up and at delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import deliveries, new_id, subscribers, utcnow
from broadcaster.runtime import Runtime
from broadcaster.security import new_webhook_secret
from channels.webhook import is_public_ip
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from tests.conftest import run_worker
from tests.support.delivery import post_and_deliver, store_confirmed
from tests.support.dns import NXDOMAIN, flipping, use_resolver

PRIVATE_URLS = [
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://10.0.0.5/hook",
    "https://192.168.1.1/hook",
    "https://172.16.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://0.0.0.0/hook",
    "http://example.com/hook",
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
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
    ):
        async with runtime.engine.begin() as conn:
            client.headers["Authorization"] = f"Bearer {await create_token(conn, 'ssrf')}"
        yield client
    await runtime.aclose()


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_webhook_urls_are_refused_at_sign_up(strict_client: httpx.AsyncClient, url: str) -> None:
    api = await strict_client.post(
        "/api/v1/subscribers", json={"channel": "webhook", "address": url, "confirmed": True}
    )
    assert api.status_code == 422, (url, api.text)
    public = await strict_client.post("/subscribe", json={"webhook": url})
    assert public.status_code in (404, 422), (url, public.status_code)


def test_address_classes() -> None:
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.31.255.255",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:10.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "fc00::1",
    ):
        assert not is_public_ip(address), address
    for address in ("93.184.216.34", "2606:2800:220:1::1", "1.1.1.1"):
        assert is_public_ip(address), address


async def test_delivery_rechecks_the_address(strict_settings: Settings, runtime: Runtime) -> None:
    """A URL that was public at sign-up but resolves to loopback now (DNS rebinding) is never called."""
    receiver = WebhookReceiver()
    async with serve_app(receiver.app()) as base:
        now = utcnow()
        async with runtime.engine.begin() as conn:  # stored as if it had passed the sign-up check
            await conn.execute(
                subscribers.insert().values(
                    id=new_id(),
                    channel="webhook",
                    address=f"{base}/hook",
                    confirmed=True,
                    confirmed_at=now,
                    created_at=now,
                    secret=new_webhook_secret(),
                    drill=False,
                    meta={},
                )
            )
        from tests.support.posting import post_body as post

        strict = Runtime.build(strict_settings)
        try:
            posted, _ = await post(
                strict, {"title": "x", "status": "investigating", "message": "x", "channels": ["webhook"]}
            )
        finally:
            await strict.aclose()
        await run_worker(strict_settings)
    assert receiver.attempts == 0, "the worker called a loopback address"
    async with runtime.engine.connect() as conn:
        state, error = (
            await conn.execute(
                select(deliveries.c.state, deliveries.c.last_error).where(deliveries.c.update_id == posted.update_id)
            )
        ).one()
    assert state == "failed" and "private or loopback" in error


PUBLIC_V4 = "93.184.216.34"

# (URL, what the fake DNS answers for its host; None: an IP literal, no lookup). Issue 17 measured each passing.
REFUSED_TARGETS: list[tuple[str, Any]] = [
    ("https://cgnat.example/hook", ["100.64.0.1"]),
    ("https://sixtofour.example/hook", ["2002:7f00:1::"]),  # 6to4 around 127.0.0.1
    ("https://zoned.example/hook", ["fe80::1%eth0"]),
    ("https://mixed.example/hook", [PUBLIC_V4, "100.64.0.1"]),  # every address must be public
    ("https://nxdomain.example/hook", NXDOMAIN),  # does not resolve: refused, not left to the request
    ("https://100.64.0.1/hook", None),
    ("https://[2002:7f00:1::]/hook", None),
    ("https://[fe80::1%25eth0]/hook", None),
    ("http://[fe80::1%25eth0]/", None),
]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Any:
    answers = {httpx.URL(url).host: answer for url, answer in REFUSED_TARGETS if answer is not None}
    return use_resolver(monkeypatch, {**answers, "public.example": [PUBLIC_V4]})


@pytest.fixture
async def loopback_listener() -> AsyncIterator[tuple[int, list[str]]]:
    """A loopback TCP port that records every connection made to it, TLS or not."""
    hits: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append("connected")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], hits


@pytest.mark.parametrize(("url", "answer"), REFUSED_TARGETS)
async def test_refused_at_sign_up(strict_client: httpx.AsyncClient, dns: Any, url: str, answer: Any) -> None:
    api = await strict_client.post(
        "/api/v1/subscribers", json={"channel": "webhook", "address": url, "confirmed": True}
    )
    assert api.status_code == 422, api.text
    assert "address" in api.json()["error"]["fields"]
    public = await strict_client.post("/subscribe", json={"webhook": url})
    assert public.status_code == 422, public.text
    assert "webhook" in public.json()["error"]["fields"]


async def test_a_public_name_is_accepted_at_sign_up(strict_client: httpx.AsyncClient, dns: Any) -> None:
    """The control: the same two routes accept a host whose every address is public."""
    api = await strict_client.post(
        "/api/v1/subscribers", json={"channel": "webhook", "confirmed": True, "address": "https://public.example/hook"}
    )
    assert api.status_code == 201, api.text
    assert dns.calls == ["public.example"]
    public = await strict_client.post("/subscribe", json={"webhook": "https://public.example/other"})
    assert public.status_code == 202, public.text


async def test_refused_at_delivery(strict_settings: Settings, runtime: Runtime, dns: Any) -> None:
    """Stored as if sign-up had let them through: every delivery fails for good, the reason naming the host only."""
    secret_part = "/s3cret-path?token=s3cret-query"
    addresses = [url.rstrip("/") + secret_part for url, _ in REFUSED_TARGETS]
    await store_confirmed(runtime, "webhook", addresses)
    rows = await post_and_deliver(strict_settings, runtime, ["webhook"])
    assert len(rows) == len(addresses)
    for address, (state, attempts, error) in rows.items():
        assert (state, attempts) == ("failed", 1), (address, state, attempts, error)  # permanent: not retried
        assert error.startswith("refused: ") and "s3cret" not in error, (address, error)
        assert ("does not resolve" if "nxdomain" in address else "private or loopback") in error, error


async def test_an_answer_flipping_to_loopback_never_reaches_it(
    strict_client: httpx.AsyncClient,
    strict_settings: Settings,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    loopback_listener: tuple[int, list[str]],
) -> None:
    """Rebinding: public when sign-up looks, loopback when delivery does; one lookup each, loopback never called."""
    port, hits = loopback_listener
    dns = use_resolver(monkeypatch, {"flip.example": flipping(PUBLIC_V4, "127.0.0.1")})
    url = f"https://flip.example:{port}/hook"
    stored = await strict_client.post(
        "/api/v1/subscribers", json={"channel": "webhook", "address": url, "confirmed": True}
    )
    assert stored.status_code == 201, stored.text
    rows = await post_and_deliver(strict_settings, runtime, ["webhook"])
    assert rows == {url: ("failed", 1, "refused: flip.example resolves to a private or loopback address")}
    assert hits == [], "the worker connected to the loopback address"
    assert dns.calls == ["flip.example", "flip.example"]  # sign-up, then delivery: nothing looked it up again
