"""The sandbox as one server: every provider app under its path prefix, the outbox, a health check.

    sandbox = Sandbox("http://127.0.0.1:8025")
    with sandbox.smtp("127.0.0.1", 8026):
        await make_server(sandbox, "127.0.0.1", 8025).serve()

Paths: ``/twilio``, ``/mastodon``, ``/bluesky``, ``/x``, ``/zendesk``, ``/freshdesk``, and the
chats ``/slack`` (webhooks and the bot's Web API), ``/teams``, ``/discord``, ``/google-chat`` (each
provider's own API below it), ``POST /webhook/{name}`` (any name: recorded, answered 204),
``GET /outbox?after=<seq>`` and ``GET /healthz``. The providers use the credentials of
``sandbox.config``; every request one of them accepts becomes an outbox event.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox import config
from sandbox.outbox import (
    Outbox,
    bluesky_data,
    discord_data,
    email_data,
    google_chat_data,
    mastodon_data,
    slack_data,
    sms_data,
    teams_data,
    webhook_data,
    x_data,
)
from sandbox.providers.bluesky import BlueskyProvider
from sandbox.providers.discord import DiscordProvider
from sandbox.providers.freshdesk import FakeFreshdesk
from sandbox.providers.google_chat import GoogleChatProvider
from sandbox.providers.mastodon import MastodonProvider
from sandbox.providers.slack import SlackProvider
from sandbox.providers.teams import TeamsProvider
from sandbox.providers.twilio import TwilioProvider
from sandbox.providers.x import XProvider
from sandbox.providers.zendesk import FakeZendesk
from sandbox.smtp import Received, RecordingSMTP, recording_smtp

log = logging.getLogger("sandbox")

LOG_KEEP = 100  # requests each provider keeps in its own logs (the tests read them; the outbox does not)


class Sandbox:
    """The provider apps, configured with ``sandbox.config``, feeding one ``Outbox``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.outbox = Outbox()
        self.twilio = TwilioProvider(
            account_sid=config.TWILIO_ACCOUNT_SID, auth_token=config.TWILIO_AUTH_TOKEN, senders={config.TWILIO_FROM}
        )
        self.mastodon = MastodonProvider(token=config.MASTODON_TOKEN)
        self.bluesky = BlueskyProvider(handle=config.BLUESKY_HANDLE, password=config.BLUESKY_APP_PASSWORD)
        self.x = XProvider(token=config.X_TOKEN)
        self.zendesk = FakeZendesk(
            email=config.ZENDESK_EMAIL,
            api_token=config.ZENDESK_API_TOKEN,
            section_ids=(config.ZENDESK_SECTION_ID,),
            permission_group_ids=(config.ZENDESK_PERMISSION_GROUP_ID,),
        )
        self.zendesk.base_url = self.base_url + config.PREFIXES["zendesk"]  # the article URLs it answers
        self.freshdesk = FakeFreshdesk(api_key=config.FRESHDESK_API_KEY, folder_ids=(config.FRESHDESK_FOLDER_ID,))
        self.slack = SlackProvider(token=config.SLACK_BOT_TOKEN, channels={config.SLACK_CHANNEL: "status"})
        self.teams = TeamsProvider()
        self.discord = DiscordProvider(forums={config.DISCORD_FORUM_ID})
        self.google_chat = GoogleChatProvider()

        outbox = self.outbox
        self.twilio.on_accept = _guarded(lambda resource: outbox.record("sms", sms_data(resource)))
        self.mastodon.on_accept = _guarded(lambda status: outbox.record("mastodon", mastodon_data(status)))
        self.bluesky.on_accept = _guarded(lambda record: outbox.record("bluesky", bluesky_data(record)))
        self.x.on_accept = _guarded(lambda tweet: outbox.record("x", x_data(tweet)))
        self.zendesk.on_accept = _guarded(
            lambda article: outbox.article("zendesk", str(article["id"]), article["title"], article["body"])
        )
        self.freshdesk.on_accept = _guarded(
            lambda article: outbox.article("freshdesk", str(article["id"]), article["title"], article["description"])
        )
        self.slack.on_accept = _guarded(lambda entry: outbox.record(*slack_data(entry)))
        self.teams.on_accept = _guarded(lambda entry: outbox.record("teams", teams_data(entry)))
        self.discord.on_accept = _guarded(
            lambda message: outbox.record(
                "discord_forum" if message["webhook_id"] in self.discord.forums else "discord", discord_data(message)
            )
        )
        self.google_chat.on_accept = _guarded(lambda message: outbox.record("google_chat", google_chat_data(message)))

        apps: dict[str, ASGIApp] = {
            "twilio": self.twilio.app,
            "mastodon": self.mastodon.app,
            "bluesky": self.bluesky.app,
            "x": self.x.app,
            "zendesk": self.zendesk.app,
            "freshdesk": self.freshdesk.app,
            "slack": self.slack.app,
            "teams": self.teams.app,
            "discord": self.discord.app,
            "google_chat": self.google_chat.app,
            "webhook": Starlette(routes=[Route("/{name:path}", self._webhook, methods=["POST"])]),
        }
        routes = [
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/outbox", self._outbox, methods=["GET"]),
            *(Mount(config.PREFIXES[name], app=app) for name, app in apps.items()),
        ]
        self.app: ASGIApp = _TrimLogs(Starlette(routes=routes), self._trim)

    @contextlib.contextmanager
    def smtp(self, host: str, port: int) -> Iterator[RecordingSMTP]:
        """Run the SMTP catcher on ``host:port`` for the block, its mails going to the outbox."""
        with recording_smtp(host=host, port=port) as smtp:
            outbox = self.outbox

            def accepted(received: Received) -> None:
                outbox.record("email", email_data(received))
                del smtp.handler.received[:-LOG_KEEP]  # aiosmtpd's thread, the one that appends

            smtp.handler.on_accept = _guarded(accepted)
            yield smtp

    async def _webhook(self, request: Request) -> Response:
        body = await request.body()
        self.outbox.record("webhook", webhook_data(request.url.path, dict(request.headers), body))
        return Response(status_code=204)

    async def _outbox(self, request: Request) -> Response:
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            return JSONResponse({"error": "after: must be a non-negative integer (an event's seq)"}, 400)
        events, last = self.outbox.after(int(after))
        return JSONResponse({"events": events, "last": last})

    def _trim(self) -> None:
        # The providers log every request for the tests; a long-running sandbox keeps the latest.
        for requests in (
            self.mastodon.requests,
            self.bluesky.requests,
            self.bluesky.calls,
            self.x.requests,
            self.twilio.messages,
            self.zendesk.received,
            self.freshdesk.received,
            self.slack.posts,
            self.slack.requests,
            self.teams.received,
            self.teams.requests,
            self.discord.messages,
            self.discord.requests,
            self.google_chat.messages,
            self.google_chat.requests,
        ):
            del requests[:-LOG_KEEP]


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def _guarded(hook: Callable[[Any], object]) -> Callable[[Any], None]:
    """``hook``, its failures logged rather than failing the provider's answer."""

    def call(value: Any) -> None:
        try:
            hook(value)
        except Exception:
            log.exception("sandbox: could not record an outbox event")

    return call


class _TrimLogs:
    """ASGI wrapper: after each request, ``trim``."""

    def __init__(self, app: ASGIApp, trim: Callable[[], None]) -> None:
        self.app, self.trim = app, trim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            self.trim()


def url_host(host: str) -> str:
    """``host`` as it goes in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


def make_server(sandbox: Sandbox, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``sandbox.app`` that logs nothing below WARNING and no access line."""
    settings = uvicorn.Config(
        sandbox.app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", server_header=False
    )
    return uvicorn.Server(settings)
