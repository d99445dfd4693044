"""Secrets never reach a log line or a repr: tokens, passwords, signing keys, provider credentials."""

from __future__ import annotations

import logging

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from broadcaster.config import Settings
from broadcaster.delivery.registry import channel_classes
from broadcaster.domain.tokens import create_token
from broadcaster.domain.users import create_user
from broadcaster.runtime import Runtime
from sandbox.providers.twilio import TwilioProvider
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from status_page.app import create_app
from tests.conftest import make_settings, run_worker

SECRET_KEY = "sk-very-secret-signing-key-0123456789"
TWILIO_TOKEN = "twilio-auth-token-0123456789abcdef"
PASSWORD = "hunter2-password-0123456789"


def is_secret(annotation: object) -> bool:
    return annotation in (SecretStr, SecretStr | None)


def test_settings_repr_masks_secrets() -> None:
    # Every channel configured from its example, each of its secrets given a value of its own.
    classes = [cls.settings_class for cls in channel_classes().values()]
    values = {name: value for settings_class in classes for name, value in settings_class.example.items()}
    channel_secrets = [(c, n) for c in classes for n, info in c.model_fields.items() if is_secret(info.annotation)]
    values |= {name: f"{name}-secret-0123456789" for _, name in channel_secrets}
    values |= {"smtp_username": "relay-user"}  # the relay's password comes with a user name
    core_secrets = {n: f"{n}-secret-0123456789" for n, i in Settings.model_fields.items() if is_secret(i.annotation)}
    values |= core_secrets | {"secret_key": SECRET_KEY}  # the core's own secrets too (PagerDuty's signing secret)
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    secret_fields = [name for name, info in Settings.model_fields.items() if is_secret(info.annotation)]
    assert len(secret_fields) + len(channel_secrets) >= 8
    text = repr(settings) + str(settings) + repr(settings.model_dump())
    for name in secret_fields:
        value = getattr(settings, name)
        assert value is not None and value.get_secret_value() not in text, name
    for settings_class, name in channel_secrets:
        config = settings_class.from_core(settings)
        assert config is not None, settings_class
        value = getattr(config, name)
        assert value.get_secret_value() == f"{name}-secret-0123456789"
        assert value.get_secret_value() not in text + repr(config) + str(config) + repr(config.model_dump()), name


async def test_no_secret_in_logs_during_a_fan_out(
    database_url: str, clean_database: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything at INFO (what a deployment logs), and our own code at DEBUG too. Third-party DEBUG
    # loggers (aiosqlite prints SQL parameters) are not ours to run in production.
    caplog.set_level(logging.INFO)
    for name in ("broadcaster", "channels", "status_page", "arq"):
        caplog.set_level(logging.DEBUG, logger=name)
    provider = TwilioProvider(auth_token=TWILIO_TOKEN)
    receiver = WebhookReceiver()
    async with serve_app(provider.app) as twilio_url, serve_app(receiver.app()) as hook_url:
        settings = make_settings(
            database_url,
            secret_key=SECRET_KEY,
            twilio_base_url=twilio_url,
            twilio_account_sid=provider.account_sid,
            twilio_auth_token=TWILIO_TOKEN,
            twilio_from="+15005550006",
            sms_rate_per_s=1000.0,
        )
        runtime = Runtime.build(settings)
        app = create_app(settings, runtime)
        try:
            async with (
                LifespanManager(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
            ):
                async with runtime.engine.begin() as conn:
                    token = await create_token(conn, "logs")
                    await create_user(conn, "carol", PASSWORD, "commander")
                auth = {"Authorization": f"Bearer {token}"}
                hook = await client.post(
                    "/api/v1/subscribers",
                    headers=auth,
                    json={"channel": "webhook", "address": f"{hook_url}/hook", "confirmed": True},
                )
                webhook_secret = hook.json()["secret"]
                receiver.secret = webhook_secret
                await client.post(
                    "/api/v1/subscribers",
                    headers=auth,
                    json={"channel": "sms", "address": "+14155550123", "confirmed": True},
                )
                page = await client.get("/login")
                from tests.security.helpers import CSRF

                csrf = CSRF.search(page.text)
                assert csrf
                await client.post(
                    "/login", data={"username": "carol", "password": PASSWORD + "x", "csrf_token": csrf.group(1)}
                )
                created = await client.post(
                    "/api/v1/incidents",
                    headers=auth,
                    json={"title": "Outage", "status": "investigating", "message": "Investigating."},
                )
                assert created.status_code == 201
                await run_worker(settings)
                await client.get("/api/v1/incidents", headers={"Authorization": "Bearer bc_wrong"})
        finally:
            await (await runtime.queue.pool()).delete(settings.queue_name)
            await runtime.aclose()
    assert receiver.verified == 1 and len(provider.messages) == 1, "the fan-out did not run"
    assert len(caplog.records) > 5
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    for name, secret in {
        "secret key": SECRET_KEY,
        "Twilio token": TWILIO_TOKEN,
        "password": PASSWORD,
        "API token": token,
        "webhook secret": webhook_secret,
        "webhook key": webhook_secret.removeprefix("whsec_"),
    }.items():
        assert secret not in logged, f"the {name} was logged"
