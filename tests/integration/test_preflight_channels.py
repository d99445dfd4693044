"""Each channel's pre-flight ``check()`` against its local provider: what it verifies, and the
provider's own reason when that fails; the check's timeout; the worker's cron."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from broadcaster.config import Settings
from broadcaster.delivery import preflight
from broadcaster.errors import DeliveryError, PermanentError
from broadcaster.jobs.worker import make_worker
from broadcaster.runtime import Runtime
from channels.email import EmailChannel
from channels.freshdesk import FreshdeskChannel
from channels.mastodon import MastodonChannel
from channels.sms import SmsChannel
from channels.zendesk import ZendeskChannel
from sandbox.providers.freshdesk import FakeFreshdesk
from sandbox.providers.mastodon import MastodonProvider
from sandbox.providers.twilio import TwilioProvider
from sandbox.providers.zendesk import FakeZendesk
from sandbox.serve import serve_app
from sandbox.smtp import recording_smtp
from tests.conftest import make_settings


async def failure(check: Any) -> str:
    with pytest.raises(DeliveryError) as raised:
        await check()
    return raised.value.reason


def _relay_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"relay", b"s3cret")
    return AuthResult(success=ok, handled=False)


async def test_email_opens_a_session_logs_in_and_quits(settings: Settings) -> None:
    with recording_smtp(authenticator=_relay_login, auth_require_tls=False) as smtp:
        for password, expected in (("s3cret", None), ("rotated", "smtp 535 at auth")):
            values = smtp.settings(smtp_username="relay", smtp_password=password)
            channel = EmailChannel(make_settings(settings.database_url, **values))
            if expected is None:
                assert await channel.check() == f"EHLO/AUTH ok at {smtp.host}:{smtp.port}"
            else:
                assert expected in await failure(channel.check)
        assert smtp.received == []  # a session, never a mail
    dead = EmailChannel(make_settings(settings.database_url, **smtp.settings()))  # the server is gone now
    assert (await failure(dead.check)).startswith("smtp connect: SMTPConnectError")


async def test_sms_fetches_the_account(settings: Settings) -> None:
    twilio = TwilioProvider()
    async with serve_app(twilio.app) as base_url:

        def channel(token: str) -> SmsChannel:
            return SmsChannel(
                make_settings(
                    settings.database_url,
                    twilio_base_url=base_url,
                    twilio_account_sid=twilio.account_sid,
                    twilio_auth_token=token,
                    twilio_from="+15005550006",
                )
            )

        good, revoked = channel(twilio.auth_token), channel("revoked")
        try:
            assert await good.check() == f"account {twilio.account_sid} is active"
            assert await failure(revoked.check) == ("credentials need attention: twilio 401 error 20003: Authenticate")
            twilio.account_status = "suspended"
            with pytest.raises(PermanentError, match=f"account {twilio.account_sid} is suspended, not active"):
                await good.check()
        finally:
            await good.aclose()
            await revoked.aclose()
    assert twilio.messages == [] and twilio.account_fetches == 3


async def test_mastodon_verifies_its_credentials() -> None:
    mastodon = MastodonProvider()
    async with serve_app(mastodon.app) as base_url:
        good, revoked = MastodonChannel(base_url, mastodon.token), MastodonChannel(base_url, "revoked")
        try:
            assert await good.check() == "logged in as @status at 127.0.0.1"
            assert await failure(revoked.check) == (
                "credentials need attention: mastodon answered 401: The access token is invalid"
            )
        finally:
            await good.aclose()
            await revoked.aclose()
    assert mastodon.statuses == {}


async def test_zendesk_needs_an_agent_and_the_section() -> None:
    zendesk = FakeZendesk(section_ids=(360001,))
    async with serve_app(zendesk.app) as base_url:
        zendesk.base_url = base_url
        good = ZendeskChannel(base_url, zendesk.email, zendesk.api_token, "360001")
        missing = ZendeskChannel(base_url, zendesk.email, zendesk.api_token, "999")
        revoked = ZendeskChannel(base_url, zendesk.email, "revoked", "360001")
        try:
            assert await good.check() == "signed in as agent@example.com (admin); section 360001 exists ('Incidents')"
            assert await failure(missing.check) == (
                "zendesk answered 404 to GET /api/v2/help_center/sections/999.json: RecordNotFound; Not found"
            )
            assert await failure(revoked.check) == (
                "credentials need attention: zendesk answered 401 to GET /api/v2/users/me.json: "
                "Couldn't authenticate you"
            )
            zendesk.user_role = "end-user"
            assert "signs in as end-user, not an agent" in await failure(good.check)
        finally:
            for channel in (good, missing, revoked):
                await channel.aclose()
    assert zendesk.articles == {}


async def test_freshdesk_needs_the_agent_and_the_folder() -> None:
    freshdesk = FakeFreshdesk(folder_ids=(73000012,))
    async with serve_app(freshdesk.app) as base_url:
        good = FreshdeskChannel(base_url, freshdesk.api_key, "73000012")
        missing = FreshdeskChannel(base_url, freshdesk.api_key, "1")
        revoked = FreshdeskChannel(base_url, "revoked", "73000012")
        try:
            assert await good.check() == "signed in as agent@example.com; folder 73000012 exists ('Incidents')"
            assert await failure(missing.check) == (
                "freshdesk answered 404 to GET /api/v2/solutions/folders/1: Not Found"
            )
            assert "invalid_credentials" in await failure(revoked.check)
        finally:
            for channel in (good, missing, revoked):
                await channel.aclose()
    assert freshdesk.articles == {}


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word (no SMTP greeting, no HTTP answer)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_checks_run_at_once_each_within_its_timeout(settings: Settings) -> None:
    async with silent_server() as port:
        quiet = make_settings(
            settings.database_url,
            smtp_host="127.0.0.1",
            smtp_port=port,
            email_from="status@example.com",
            mastodon_base_url=f"http://127.0.0.1:{port}",
            mastodon_access_token="token",
            channel_check_timeout_s=0.4,
        )
        rt = Runtime.build(quiet)
        try:
            started = time.monotonic()
            checks = {check.channel: check for check in await preflight.run(rt)}
            elapsed_s = time.monotonic() - started
            failed = await preflight_job_count(rt)
        finally:
            await rt.aclose()
    assert checks["email"].reason == checks["mastodon"].reason == "no answer within 0.4 s"
    assert elapsed_s < 0.75, "the two checks ran one after the other"
    assert failed == 2


async def preflight_job_count(rt: Runtime) -> int:
    """What the worker's cron entry returns: how many channels fail."""
    return await preflight.preflight_job({"runtime": rt})


def test_the_worker_runs_the_check_every_n_minutes(settings: Settings) -> None:
    def preflight_cron(minutes: int) -> Any:
        worker = make_worker(make_settings(settings.database_url, channel_check_interval_minutes=minutes))
        return next((job for job in worker.cron_jobs if job.name == "preflight"), None)

    every_15 = preflight_cron(15)
    assert every_15 is not None and every_15.minute == {0, 15, 30, 45} and every_15.second == 0
    every_2h = preflight_cron(120)
    assert every_2h.hour == set(range(0, 24, 2)) and every_2h.minute == 0
    assert preflight_cron(0) is None
