"""Chat webhook URLs: the webhook SSRF policy at sign-up and at delivery; secrets never shown nor logged.

Acceptance 4 of issue 21: a Slack, Teams, Discord or Google Chat URL pointing at a private
address is refused at sign-up (admin API and public form, 422 naming the field) and, stored
anyway (or rebound in DNS since), refused again where the worker connects: failed for good,
the provider never called.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from broadcaster.config import Settings
from broadcaster.logs import QUIET_LOGGERS
from broadcaster.runtime import Runtime
from broadcaster.security import mask_url
from sandbox.providers.discord import DiscordProvider
from sandbox.providers.google_chat import GoogleChatProvider
from sandbox.providers.slack import SlackProvider
from sandbox.providers.teams import TeamsProvider
from sandbox.serve import serve_app
from tests.conftest import run_worker
from tests.integration.test_console import login
from tests.security.test_ssrf import strict_client, strict_settings  # noqa: F401 (fixtures)
from tests.support.delivery import post_and_deliver, store_confirmed
from tests.support.dns import flipping, use_resolver
from tests.support.posting import post_body

CHATS = ("slack", "teams", "discord", "google_chat")
PATHS = {
    "slack": "/services/T0/B0/s3cret-hook",
    "teams": "/workflows/w1/triggers/manual/paths/invoke?api-version=2016-06-01&sig=s3cret-sig",
    "discord": "/api/webhooks/123/s3cret-token",
    "google_chat": "/v1/spaces/S/messages?key=k&token=s3cret-token",
}
PRIVATE_HOSTS = [
    "https://127.0.0.1",
    "https://10.0.0.5",
    "https://[::1]",
    "https://169.254.169.254",
    "http://example.com",
]


@pytest.mark.parametrize("channel", CHATS)
@pytest.mark.parametrize("host", PRIVATE_HOSTS)
async def test_a_private_chat_url_is_refused_at_sign_up(
    strict_client: httpx.AsyncClient,  # noqa: F811
    channel: str,
    host: str,
) -> None:
    url = host + PATHS[channel]
    api = await strict_client.post("/api/v1/subscribers", json={"channel": channel, "address": url, "confirmed": True})
    assert api.status_code == 422, api.text
    assert "address" in api.json()["error"]["fields"]
    public = await strict_client.post("/subscribe", json={channel: url})
    assert public.status_code == 422, public.text
    assert channel in public.json()["error"]["fields"]


async def test_a_name_resolving_to_a_private_address_is_refused_at_sign_up(
    strict_client: httpx.AsyncClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_resolver(monkeypatch, {"hooks.internal.example": ["10.1.2.3"], "hooks.public.example": ["93.184.216.34"]})
    for channel in CHATS:
        refused = await strict_client.post(
            "/subscribe", json={channel: "https://hooks.internal.example" + PATHS[channel]}
        )
        assert refused.status_code == 422 and "private or loopback" in refused.json()["error"]["fields"][channel]
        accepted = await strict_client.post(
            "/subscribe", json={channel: "https://hooks.public.example" + PATHS[channel]}
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["status"] == "pending_approval" and "secret" not in accepted.json()


async def test_a_chat_url_on_loopback_is_refused_at_delivery(
    strict_client: httpx.AsyncClient,  # noqa: F811
    strict_settings: Settings,  # noqa: F811
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stored directly, and one rebound in DNS since sign-up: each fails for good, no provider is called."""
    apps: dict[str, Any] = {
        "slack": SlackProvider(),
        "teams": TeamsProvider(),
        "discord": DiscordProvider(),
        "google_chat": GoogleChatProvider(),
    }
    dns = use_resolver(monkeypatch, {"flip.example": flipping("93.184.216.34", "127.0.0.1")})
    async with (
        serve_app(apps["slack"].app) as slack,
        serve_app(apps["teams"].app) as teams,
        serve_app(apps["discord"].app) as discord,
        serve_app(apps["google_chat"].app) as google,
    ):
        bases = {"slack": slack, "teams": teams, "discord": discord, "google_chat": google}
        for channel in CHATS:
            await store_confirmed(runtime, channel, [bases[channel] + PATHS[channel]])
        rebound = f"https://flip.example:{httpx.URL(slack).port}" + PATHS["slack"]
        signed_up = await strict_client.post(
            "/api/v1/subscribers", json={"channel": "slack", "address": rebound, "confirmed": True}
        )
        assert signed_up.status_code == 201, signed_up.text  # public when sign-up looked
        rows = await post_and_deliver(strict_settings, runtime, CHATS)
    assert dns.calls == ["flip.example", "flip.example"], "sign-up, then delivery: one look-up each"
    assert len(rows) == 5
    for address, (state, attempts, error) in rows.items():
        assert (state, attempts) == ("failed", 1), (address, state, attempts, error)
        assert error.startswith("refused: ") and "private or loopback" in error, error
        assert "s3cret" not in error
    assert [len(app.requests) for app in apps.values()] == [0, 0, 0, 0], "the worker called a loopback address"


async def test_chat_urls_are_masked_in_the_console_and_never_logged(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    slack = SlackProvider(gone={"T0/B0/s3cret-hook"})
    async with serve_app(slack.app) as base:
        url = base + PATHS["slack"]
        await store_confirmed(runtime, "slack", [url])
        # What a deployment logs (INFO, httpx quieted as broadcaster.logs does), and our own code at DEBUG.
        # (set_level also sets the capturing handler's level: the last call, DEBUG, is the one it keeps)
        for name in QUIET_LOGGERS:
            caplog.set_level(logging.WARNING, logger=name)
        caplog.set_level(logging.INFO)
        for name in ("broadcaster", "channels", "status_page", "arq"):
            caplog.set_level(logging.DEBUG, logger=name)
        posted, _ = await post_body(
            runtime, {"title": "x", "status": "investigating", "message": "x", "channels": ["slack"]}
        )
        await run_worker(settings)
    assert len(slack.requests) == 1
    assert "s3cret" not in caplog.text and caplog.records, "nothing logged the URL (and something was logged)"
    await login(client, runtime, "ic", "commander")
    page = await client.get(f"/console/updates/{posted.update_id}")
    assert page.status_code == 200, page.text
    assert mask_url(url) in page.text and "s3cret" not in page.text
    assert mask_url(url) == f"{base}/services/…"
    assert mask_url("https://[::1]:8443/api/webhooks/1/t") == "https://[::1]:8443/api/…"
    assert mask_url("not a url") == "…"


async def test_the_sign_up_form_takes_a_chat_webhook(
    strict_client: httpx.AsyncClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_resolver(monkeypatch, {"hooks.public.example": ["93.184.216.34"]})
    form = await strict_client.get("/subscribe")
    assert form.status_code == 200
    for channel in CHATS:
        assert f'name="{channel}" type="url"' in form.text
    sent = await strict_client.post("/subscribe", data={"discord": "https://hooks.public.example" + PATHS["discord"]})
    assert sent.status_code == 202 and "An administrator will confirm this webhook" in sent.text
    refused = await strict_client.post("/subscribe", data={"teams": "https://10.0.0.5" + PATHS["teams"]})
    assert refused.status_code == 422 and "must not point at a private or loopback address" in refused.text
