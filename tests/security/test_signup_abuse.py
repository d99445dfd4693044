"""Public sign-up cannot be turned against an address or the SMS bill (issue 17).

A per-address cap on confirmations (whoever asks, from wherever), an SMS country allowlist
and a global hourly SMS budget; without Redis, SMS sign-ups are refused and no text leaves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from broadcaster.config import Settings
from broadcaster.db import subscribers
from broadcaster.runtime import Runtime
from sandbox.providers.twilio import TwilioProvider
from sandbox.serve import free_port, serve_app
from sandbox.smtp import RecordingSMTP, recording_smtp
from status_page.app import create_app
from tests.conftest import make_settings, run_worker

SENDER = "+15005550006"


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with recording_smtp() as server:
        yield server


@pytest.fixture
def provider() -> TwilioProvider:
    return TwilioProvider(senders={SENDER})


@pytest.fixture
async def twilio_url(provider: TwilioProvider) -> AsyncIterator[str]:
    async with serve_app(provider.app) as url:
        yield url


@pytest.fixture
def configure(
    database_url: str, clean_database: None, smtp: RecordingSMTP, provider: TwilioProvider, twilio_url: str
) -> Any:
    """Settings with email and SMS on and the per-IP limits out of the way; ``overrides`` on top."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            **smtp.settings(),
            twilio_base_url=twilio_url,
            twilio_account_sid=provider.account_sid,
            twilio_auth_token=provider.auth_token,
            twilio_from=SENDER,
            sms_rate_per_s=1000.0,
            subscribe_email_per_ip=1000,
            subscribe_sms_per_ip=1000,
            subscribe_sms_per_number=1000,
            subscribe_sms_per_prefix=1000,
        )
        return make_settings(database_url, **(values | overrides))

    return build


@asynccontextmanager
async def public(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
        ):
            yield client, runtime
    finally:
        pool = await runtime.queue.pool()
        for key in [k async for k in pool.scan_iter(match=f"{settings.queue_name}*")]:
            await pool.delete(key)
        await runtime.aclose()


async def limiter_keys(runtime: Runtime) -> list[str]:
    pool = await runtime.queue.pool()
    return [
        k.decode() if isinstance(k, bytes) else str(k)
        async for k in pool.scan_iter(match=f"{runtime.settings.queue_name}:ratelimit:*")
    ]


async def test_one_address_gets_at_most_three_confirmations_a_day(configure: Any, smtp: RecordingSMTP) -> None:
    settings = configure()
    async with public(settings) as (client, runtime):
        spellings = ["victim@example.org", "Victim@example.org", "VICTIM@example.org", "victim@EXAMPLE.org"]
        codes = [(await client.post("/subscribe", json={"email": s})).status_code for s in spellings]
        assert codes == [202, 202, 202, 429]
        capped = await client.post("/subscribe", json={"email": "victim@example.org"})
        assert capped.status_code == 429 and 3600 < int(capped.headers["Retry-After"]) <= 86400
        assert capped.json()["error"]["code"] == "rate_limited"
        form = await client.post("/subscribe", data={"email": "victim@example.org"})
        assert form.status_code == 429 and "<h1>" in form.text
        assert (await client.post("/subscribe", json={"email": "someone@example.org"})).status_code == 202
        await run_worker(settings)
        keys = await limiter_keys(runtime)
        assert not any("victim" in key.lower() for key in keys), "keys hold a hash, not the address"
    to_victim = [r for r in smtp.received if any("victim" in a.lower() for a in r.rcpt_tos)]
    assert len(to_victim) == 3


async def test_a_capped_sign_up_stores_nothing(configure: Any) -> None:
    settings = configure(subscribe_confirmations_per_address=1)
    async with public(settings) as (client, runtime):
        assert (await client.post("/subscribe", json={"email": "a@example.org"})).status_code == 202
        refused = await client.post("/subscribe", json={"email": "a@example.org", "components": []})
        assert refused.status_code == 429
        async with runtime.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(subscribers))).scalar() == 1


async def test_an_active_subscriber_signing_up_again_costs_nothing(configure: Any) -> None:
    settings = configure(subscribe_confirmations_per_address=1)
    async with public(settings) as (client, runtime):
        assert (await client.post("/subscribe", json={"email": "a@example.org"})).status_code == 202
        async with runtime.engine.begin() as conn:
            await conn.execute(subscribers.update().values(confirmed=True))
        again = [(await client.post("/subscribe", json={"email": "a@example.org"})).status_code for _ in range(3)]
        assert again == [202] * 3, "no confirmation goes out, so none is counted (and nothing is revealed)"


async def test_sms_numbers_outside_the_allowed_countries_are_refused(configure: Any, provider: TwilioProvider) -> None:
    settings = configure(sms_countries="GB,ie")
    async with public(settings) as (client, _):
        us = await client.post("/subscribe", json={"phone": "+14155550100"})
        assert us.status_code == 422 and "phone" in us.json()["error"]["fields"], us.text
        assert "US" in us.json()["error"]["fields"]["phone"]
        form = await client.post("/subscribe", data={"phone": "+14155550100"})
        assert form.status_code == 422
        for number in ("+447400123456", "+353850123456"):
            response = await client.post("/subscribe", json={"phone": number})
            assert response.status_code == 202, response.text
        await run_worker(settings)
    assert sorted(m["to"] for m in provider.messages) == ["+353850123456", "+447400123456"]


def test_country_codes_are_checked_at_start_up(database_url: str) -> None:
    with pytest.raises(ValueError, match="UK"):
        make_settings(database_url, sms_countries="GB,UK")
    assert make_settings(database_url, sms_countries="").sms_countries is None, "empty: every country"


async def test_the_hourly_sms_budget_holds_for_everyone(configure: Any, provider: TwilioProvider) -> None:
    settings = configure(sms_hourly_budget=2)
    async with public(settings) as (client, _):
        codes = [(await client.post("/subscribe", json={"phone": f"+1415555010{i}"})).status_code for i in range(4)]
        assert codes == [202, 202, 429, 429]
        assert (await client.post("/subscribe", json={"email": "e@example.org"})).status_code == 202, (
            "email is not in the SMS budget"
        )
        await run_worker(settings)
    assert len(provider.messages) == 2


async def test_sms_per_address_cap(configure: Any) -> None:
    settings = configure(subscribe_confirmations_per_address=2)
    async with public(settings) as (client, runtime):
        codes = [(await client.post("/subscribe", json={"phone": "+1 (415) 555-0100"})).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        assert not any("4155550100" in key for key in await limiter_keys(runtime) if ":confirm:" in key)


async def test_without_redis_sms_fails_closed_and_email_goes_on(
    configure: Any, provider: TwilioProvider, smtp: RecordingSMTP
) -> None:
    settings = configure(redis_url=f"redis://127.0.0.1:{free_port()}/0", sms_hourly_budget=1000, sms_countries="US")
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
    ):
        sms = await client.post("/subscribe", json={"phone": "+14155550100"})
        assert sms.status_code == 503 and sms.headers["Retry-After"] == "60"
        mail = await client.post("/subscribe", json={"email": "inline@example.org"})
        assert mail.status_code == 202, "email confirmations are sent inline"
    assert provider.messages == [] and provider.requests == 0
    assert [r.rcpt_tos for r in smtp.received] == [("inline@example.org",)]
