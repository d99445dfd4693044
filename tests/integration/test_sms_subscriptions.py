"""SMS subscriptions end to end: /subscribe -> code by SMS -> confirm -> update by SMS ->
status callback; STOP/START/HELP replies; throttling; sign-up abuse limits. Against the
local Twilio Messages API and a real arq worker."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select, update

from broadcaster.config import Settings
from broadcaster.db import deliveries, subscribers, verification_codes
from broadcaster.runtime import Runtime
from broadcaster.twilio_signature import signature
from sandbox.providers.twilio import TwilioProvider
from sandbox.serve import serve_app
from tests.conftest import make_settings, run_worker

PHONE = "+14155550100"
SENDER = "+15005550006"
PUBLIC_URL = "http://status.test"


@pytest.fixture
def provider() -> TwilioProvider:
    return TwilioProvider(senders={SENDER})


@pytest.fixture
async def twilio_url(provider: TwilioProvider) -> AsyncIterator[str]:
    async with serve_app(provider.app) as url:
        yield url


def sms_settings(database_url: str, provider: TwilioProvider, twilio_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        twilio_base_url=twilio_url,
        twilio_account_sid=provider.account_sid,
        twilio_auth_token=provider.auth_token,
        twilio_from=SENDER,
        sms_rate_per_s=1000.0,
        retry_base_s=0.3,
        retry_max_s=1.5,
        max_attempts=12,
        circuit_cooldown_s=1.0,
    )
    return make_settings(database_url, **(values | overrides))


@pytest.fixture
def settings(database_url: str, clean_database: None, provider: TwilioProvider, twilio_url: str) -> Settings:
    return sms_settings(database_url, provider, twilio_url)


async def twilio_post(
    client: httpx.AsyncClient, path: str, params: dict[str, str], auth_token: str, forged: bool = False
) -> httpx.Response:
    """POST ``params`` to ``path`` the way Twilio does, signed with ``auth_token``."""
    sent = signature(auth_token, PUBLIC_URL + path, params)
    if forged:
        sent = signature("not-the-token", PUBLIC_URL + path, params)
    return await client.post(
        path,
        content=urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8", "X-Twilio-Signature": sent},
    )


def inbound(body: str, sender: str = PHONE) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "c" * 32,
        "AccountSid": "AC" + "a" * 32,
        "From": sender,
        "To": SENDER,
        "Body": body,
        "NumMedia": "0",
    }


async def subscriber_row(runtime: Runtime, phone: str = PHONE) -> Any:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(select(subscribers).where(subscribers.c.address == phone))).one()


async def subscribe_and_confirm(
    client: httpx.AsyncClient, settings: Settings, provider: TwilioProvider, phone: str = PHONE
) -> None:
    response = await client.post("/subscribe", json={"phone": phone})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "code_sent"
    await run_worker(settings)
    text = provider.bodies_to(phone)[-1]
    assert "Test Status" in text and "expires in 10 minutes" in text
    code = re.search(r"\b(\d{6})\b", text)
    assert code
    confirmed = await client.post("/subscribe/confirm", json={"phone": phone, "code": code.group(1)})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"


async def open_incident(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/incidents",
        headers=auth,
        json={
            "title": "Payments failing",
            "status": "investigating",
            "impact": "critical",
            "message": "Card payments fail for most customers. We are on it.",
            "channels": ["sms"],
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_code_confirm_update_and_status_callback(client, auth, settings, provider, runtime) -> None:
    await subscribe_and_confirm(client, settings, provider)
    assert (await subscriber_row(runtime)).confirmed
    incident = await open_incident(client, auth)
    await run_worker(settings)

    update = provider.messages[-1]
    assert update["to"] == PHONE and update["from"] == SENDER
    assert update["body"] == (
        f"[Investigating] Payments failing: Card payments fail for most customers. "
        f"{PUBLIC_URL}/incidents/{incident['id']}"
    )
    assert update["status_callback"] == f"{PUBLIC_URL}/webhooks/twilio/status"
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(select(deliveries).where(deliveries.c.channel == "sms", deliveries.c.kind == "update"))
        ).one()
    assert (row.state, row.provider_id, row.provider_status) == ("sent", update["sid"], None)

    callback = {
        "MessageSid": update["sid"],
        "MessageStatus": "delivered",
        "AccountSid": provider.account_sid,
        "From": SENDER,
        "To": PHONE,
        "ApiVersion": "2010-04-01",
    }
    forged = await twilio_post(client, "/webhooks/twilio/status", callback, provider.auth_token, forged=True)
    assert forged.status_code == 403
    response = await twilio_post(client, "/webhooks/twilio/status", callback, provider.auth_token)
    assert response.status_code == 204
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(select(deliveries).where(deliveries.c.channel == "sms", deliveries.c.kind == "update"))
        ).one()
    assert (row.state, row.provider_status) == ("sent", "delivered")


async def test_undelivered_callback_records_the_error(client, auth, settings, provider, runtime) -> None:
    await client.post("/api/v1/subscribers", headers=auth, json={"channel": "sms", "address": PHONE, "confirmed": True})
    await open_incident(client, auth)
    await run_worker(settings)
    sid = provider.messages[-1]["sid"]
    response = await twilio_post(
        client,
        "/webhooks/twilio/status",
        {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30006"},
        provider.auth_token,
    )
    assert response.status_code == 204
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(deliveries).where(deliveries.c.provider_id == sid))).one()
    assert row.provider_status == "undelivered" and row.last_error == "twilio undelivered: error 30006"
    assert (await subscriber_row(runtime)).suppressed_reason == "twilio undelivered: error 30006"


async def test_wrong_codes_are_limited(client, settings, provider, runtime) -> None:
    assert (await client.post("/subscribe", json={"phone": "(415) 555-0100"})).status_code == 422
    assert (await client.post("/subscribe", json={"phone": PHONE})).status_code == 202
    await run_worker(settings)
    code = re.search(r"\b(\d{6})\b", provider.bodies_to(PHONE)[-1])
    assert code
    wrong = f"{(int(code.group(1)) + 1) % 1_000_000:06d}"
    answers = [await client.post("/subscribe/confirm", json={"phone": PHONE, "code": wrong}) for _ in range(5)]
    assert [a.status_code for a in answers] == [422] * 5
    assert answers[0].json()["error"]["code"] == "wrong_code"
    late = await client.post("/subscribe/confirm", json={"phone": PHONE, "code": code.group(1)})
    assert late.status_code == 429 and late.json()["error"]["code"] == "too_many_attempts"
    assert not (await subscriber_row(runtime)).confirmed
    async with runtime.engine.connect() as conn:
        stored = (await conn.execute(select(verification_codes.c.code_hash))).scalar_one()
    assert code.group(1) not in stored, "only a keyed hash of the code is stored"
    form = await client.post("/subscribe/confirm", data={"phone": PHONE, "code": "12"})
    assert form.status_code == 422 and "6-digit code" in form.text


async def test_stop_start_help_replies(client, settings, provider, runtime) -> None:
    await subscribe_and_confirm(client, settings, provider)
    path = "/webhooks/twilio/inbound"

    forged = await twilio_post(client, path, inbound("STOP"), provider.auth_token, forged=True)
    assert forged.status_code == 403
    unsigned = await client.post(path, data=inbound("STOP"))
    assert unsigned.status_code == 403
    row = await subscriber_row(runtime)
    assert row.unsubscribed_at is None and row.confirmed, "a forged STOP changes nothing"

    stop = await twilio_post(client, path, inbound(" stop "), provider.auth_token)
    assert stop.status_code == 200 and stop.headers["content-type"].startswith("text/xml")
    assert stop.text.endswith("<Response></Response>")
    assert (await subscriber_row(runtime)).unsubscribed_at is not None

    start = await twilio_post(client, path, inbound("UNSTOP"), provider.auth_token)
    assert start.status_code == 200
    row = await subscriber_row(runtime)
    assert row.unsubscribed_at is None and row.confirmed

    help_reply = await twilio_post(client, path, inbound("Help"), provider.auth_token)
    assert help_reply.status_code == 200
    assert "<Message>Test Status status alerts: http://status.test Reply STOP to unsubscribe" in help_reply.text
    assert "&amp;" in help_reply.text, "the help text is escaped into TwiML"
    async with runtime.engine.begin() as conn:
        await conn.execute(update(subscribers).where(subscribers.c.address == PHONE).values(language="fr"))
    french_help = await twilio_post(client, path, inbound("HELP"), provider.auth_token)
    assert "STOP" in french_help.text and "Reply STOP" not in french_help.text, "HELP answers in the sender's language"

    for word in ("STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"):
        await twilio_post(client, path, inbound("START"), provider.auth_token)
        await twilio_post(client, path, inbound(word), provider.auth_token)
        assert (await subscriber_row(runtime)).unsubscribed_at is not None, word


async def test_throttled_provider_delivers_everything_once(client, auth, settings, provider) -> None:
    numbers = [f"+1415555{n:04d}" for n in range(110, 116)]
    for number in numbers:
        response = await client.post(
            "/api/v1/subscribers", headers=auth, json={"channel": "sms", "address": number, "confirmed": True}
        )
        assert response.status_code == 201
    provider.throttle(seconds=5, retry_after_s=2)
    await open_incident(client, auth)
    await run_worker(settings, timeout_s=60)
    assert provider.requests > len(numbers), "the provider was asked while it answered 429"
    for number in numbers:
        assert len(provider.bodies_to(number)) == 1, number


async def test_phone_sign_ups_are_rate_limited(database_url, clean_database, provider, twilio_url) -> None:
    from asgi_lifespan import LifespanManager

    from status_page.app import create_app

    settings = sms_settings(
        database_url,
        provider,
        twilio_url,
        subscribe_sms_per_ip=3,
        subscribe_sms_per_prefix=2,
        subscribe_sms_per_number=5,
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client,
    ):
        same_prefix = [
            (await client.post("/subscribe", json={"phone": f"+1415555012{i}"})).status_code for i in range(3)
        ]
        assert same_prefix == [202, 202, 429]
        per_ip = await client.post("/subscribe", json={"phone": "+442071838750"})
        assert per_ip.status_code == 429 and int(per_ip.headers["Retry-After"]) > 0
        assert per_ip.json()["error"]["code"] == "rate_limited"
        form = await client.post("/subscribe", data={"phone": "+442071838751"})
        assert form.status_code == 429 and "Retry-After" in form.headers and "<h1>" in form.text
        pool = await app.state.runtime.queue.pool()
        await pool.delete(settings.queue_name)
