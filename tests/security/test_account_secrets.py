"""Connected accounts leak no token: X's OAuth 1.0a and 2.0 credentials and Bluesky's session
stay out of every log line (a deployment at DEBUG included), every repr, and the database in clear."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from broadcaster.db import channel_credentials, make_engine
from broadcaster.delivery.channel import BroadcastChannel
from broadcaster.delivery.credential_store import SharedCredentials
from broadcaster.logs import QUIET_LOGGERS
from broadcaster.runtime import Runtime
from channels.x import XSettings
from sandbox.providers.bluesky import BlueskyProvider
from sandbox.providers.x import XProvider
from sandbox.serve import serve_app
from tests.conftest import make_settings
from tests.support.factories import make_message

pytestmark = pytest.mark.usefixtures("clean_database")


async def test_no_account_secret_in_logs_reprs_or_the_database(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # As ``broadcaster.logs.configure_logging`` sets a deployment at DEBUG: everything, but the
    # quiet loggers (httpx's URLs, oauthlib's signed parameters) from WARNING up.
    for name in QUIET_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    caplog.set_level(logging.DEBUG)  # last: it sets the capturing handler's level too
    oauth2, oauth1, pds = XProvider(client_secret="x-client-secret-0123456789"), XProvider(), BlueskyProvider()
    async with serve_app(oauth2.app) as oauth2_url, serve_app(oauth1.app) as oauth1_url, serve_app(pds.app) as pds_url:
        common = {"bluesky_base_url": pds_url, "bluesky_handle": pds.handle, "bluesky_app_password": pds.password}
        refreshing = make_settings(
            database_url,
            x_base_url=oauth2_url,
            x_client_id=oauth2.client_id,
            x_client_secret=oauth2.client_secret,
            x_refresh_token=oauth2.refresh_token,
            **common,
        )
        signing = make_settings(
            database_url,
            x_base_url=oauth1_url,
            x_consumer_key=oauth1.consumer_key,
            x_consumer_secret=oauth1.consumer_secret,
            x_access_token=oauth1.access_token,
            x_access_token_secret=oauth1.access_token_secret,
        )
        reprs = []
        for number, settings in enumerate((refreshing, signing), 1):
            runtime = Runtime.build(settings)
            try:
                for name, channel in runtime.registry.enabled.items():
                    if name in ("x", "bluesky"):
                        assert isinstance(channel, BroadcastChannel)
                        message = make_message(update_id=f"upd{number:09d}", body_text=f"Update {number}.")
                        await channel.publish(message, channel.render(message), {})
                        await channel.check()  # type: ignore[attr-defined]
                        reprs.append(repr(channel))
                store = SharedCredentials.from_settings(settings, runtime.engine)
                for name in ("x:oauth2:x-client-id", f"bluesky:{pds.handle}"):
                    reprs.append(repr(await store.load(name)))
                reprs.append(repr(settings) + repr(XSettings.from_core(settings)))
            finally:
                await runtime.aclose()
        engine = make_engine(database_url, pool=False)
        async with engine.connect() as conn:
            stored = " ".join((await conn.execute(select(channel_credentials.c.ciphertext))).scalars())
        await engine.dispose()
    assert oauth2.refresh_calls == 1 and len(oauth2.posts) == len(oauth1.posts) == len(pds.posts) == 1
    assert oauth1.signed_in_as == ["oauth1"] and pds.create_session_calls == 1
    issued_x = {*oauth2._issued, *oauth2._refresh_tokens}
    issued_pds = {*pds._access, *pds._refresh}
    secrets = {
        "X refresh token (configured)": oauth2.refresh_token,
        "X client secret": str(oauth2.client_secret),
        "X consumer key": oauth1.consumer_key,
        "X consumer secret": oauth1.consumer_secret,
        "X OAuth 1.0a access token": oauth1.access_token,
        "X OAuth 1.0a token secret": oauth1.access_token_secret,
        "Bluesky app password": pds.password,
        **{f"X issued token {n}": token for n, token in enumerate(sorted(issued_x))},
        **{f"Bluesky JWT {n}": token for n, token in enumerate(sorted(issued_pds))},
    }
    assert len(issued_x) == 2 and len(issued_pds) == 2
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    assert caplog.records, "the capture works (the registry's start-up warnings at least)"
    for what, secret in secrets.items():
        assert secret not in logged, f"the {what} was logged"
        assert secret not in " ".join(reprs), f"the {what} is in a repr"
        assert secret not in stored, f"the {what} is stored in clear"
