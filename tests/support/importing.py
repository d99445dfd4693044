"""What the import tests share: the CLI as a real process, row counts, and an app whose subscriber
channels (email, SMS, webhook) reach local providers.

    async with receiving_stack(database_url) as r:
        hooks_url = r.hooks_url  # give imported webhooks this address
        result = await run_cli(r.stack.settings, "import", "statuspage", ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.db import (
    components,
    deliveries,
    import_sources,
    incident_components,
    incidents,
    outbox,
    status_changes,
    subscriber_components,
    subscribers,
    updates,
)
from sandbox.providers.twilio import TwilioProvider
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.serve import serve_app
from sandbox.smtp import RecordingSMTP, recording_smtp
from tests.conftest import make_settings
from tests.support.all_channels import Stack, app_stack
from tests.support.worker_process import settings_env

SMS_SENDER = "+15005550006"
IMPORTED_TABLES = (
    components,
    incidents,
    updates,
    incident_components,
    status_changes,
    subscribers,
    subscriber_components,
    import_sources,
    outbox,
    deliveries,
)


async def run_cli(settings: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``broadcaster ARGS`` in its own process, configured from ``settings`` through the environment."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "broadcaster.cli", *args],
        env=settings_env(settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def table_counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows in each table an import writes (and in the outbox and ledger, which it must not)."""
    async with engine.connect() as conn:
        return {
            t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar() or 0)
            for t in IMPORTED_TABLES
        }


@dataclass
class Receivers:
    smtp: RecordingSMTP
    twilio: TwilioProvider
    hooks: WebhookReceiver
    hooks_url: str
    stack: Stack

    def received(self) -> dict[str, list[str]]:
        """What each provider accepted: email and SMS recipients, and one entry per webhook call."""
        return {
            "email": [str(r.message["To"]) for r in self.smtp.received],
            "sms": [str(m["to"]) for m in self.twilio.messages],
            "webhook": [h["body"].decode() for h in self.hooks.received],
        }


@contextlib.asynccontextmanager
async def receiving_stack(database_url: str, **overrides: Any) -> AsyncIterator[Receivers]:
    """The app on an empty database, with email, SMS and webhooks delivered to local providers."""
    twilio, hooks = TwilioProvider(senders={SMS_SENDER}), WebhookReceiver()
    with recording_smtp() as smtp:
        async with serve_app(twilio.app) as twilio_url, serve_app(hooks.app()) as hooks_url:
            settings = make_settings(
                database_url,
                **smtp.settings(),
                twilio_base_url=twilio_url,
                twilio_account_sid=twilio.account_sid,
                twilio_auth_token=twilio.auth_token,
                twilio_from=SMS_SENDER,
                sms_rate_per_s=1000.0,
                http_timeout_s=5.0,
                **overrides,
            )
            async with app_stack(settings) as stack:
                yield Receivers(smtp, twilio, hooks, f"{hooks_url}/hook", stack)
