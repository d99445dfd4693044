"""Every channel enabled at once, each pointed at its local provider, behind the real app.

    async with all_providers() as providers, app_stack(providers.settings(database_url)) as stack:
        await stack.subscribe_everyone(providers)
        response = await stack.client.post("/api/v1/incidents", headers=stack.auth, json={...})
        await run_worker(stack.settings)
        providers.mastodon.posts  # what Mastodon received

The providers are the same local apps the per-channel integration tests use
(``sandbox/providers``, ``sandbox/smtp.py``), served on loopback ports.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import delete

from broadcaster.config import Settings
from broadcaster.db import make_engine, metadata
from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from channels import bluesky, mastodon, sms, x
from sandbox.providers.bluesky import BlueskyProvider
from sandbox.providers.freshdesk import FakeFreshdesk
from sandbox.providers.mastodon import MastodonProvider
from sandbox.providers.twilio import TwilioProvider
from sandbox.providers.webhook_receiver import WebhookReceiver
from sandbox.providers.x import XProvider
from sandbox.providers.zendesk import FakeZendesk
from sandbox.serve import serve_app
from sandbox.smtp import RecordingSMTP, recording_smtp
from status_page.app import create_app
from tests.conftest import make_settings

ALL_CHANNELS = ("webhook", "email", "sms", "mastodon", "bluesky", "x", "zendesk", "freshdesk", "desk", "status_page")
SMS_SENDER = "+15005550006"
PHONE = "+14155550100"
EMAIL = "reader@example.org"
ZENDESK_SECTION_ID = 360001
ZENDESK_PERMISSION_GROUP_ID = 1501
FRESHDESK_FOLDER_ID = 73000012


@dataclass
class Providers:
    """The local providers of every channel that talks to one, and where each listens."""

    smtp: RecordingSMTP
    twilio: TwilioProvider = field(default_factory=lambda: TwilioProvider(senders={SMS_SENDER}))
    mastodon: MastodonProvider = field(default_factory=MastodonProvider)
    bluesky: BlueskyProvider = field(default_factory=BlueskyProvider)
    x: XProvider = field(default_factory=XProvider)
    zendesk: FakeZendesk = field(
        default_factory=lambda: FakeZendesk(
            section_ids=(ZENDESK_SECTION_ID,), permission_group_ids=(ZENDESK_PERMISSION_GROUP_ID,)
        )
    )
    freshdesk: FakeFreshdesk = field(default_factory=lambda: FakeFreshdesk(folder_ids=(FRESHDESK_FOLDER_ID,)))
    webhook: WebhookReceiver = field(default_factory=WebhookReceiver)
    urls: dict[str, str] = field(default_factory=dict)  # provider name -> base URL

    def settings(self, database_url: str, *, channels: Sequence[str] | None = None, **overrides: Any) -> Settings:
        """Test settings (``tests.conftest.make_settings``) with every channel (or only ``channels``) configured."""
        groups = self.channel_settings()
        values: dict[str, Any] = {"http_timeout_s": 5.0}
        for name in groups if channels is None else channels:
            values |= groups[name]
        return make_settings(database_url, **(values | overrides))

    def channel_settings(self) -> dict[str, dict[str, Any]]:
        """Each provider-backed channel's settings, pointed at its local provider."""
        return {
            "email": self.smtp.settings(),
            "sms": {
                "twilio_base_url": self.urls["twilio"],
                "twilio_account_sid": self.twilio.account_sid,
                "twilio_auth_token": self.twilio.auth_token,
                "twilio_from": SMS_SENDER,
                "sms_rate_per_s": 1000.0,
            },
            "mastodon": {"mastodon_base_url": self.urls["mastodon"], "mastodon_access_token": self.mastodon.token},
            "bluesky": {
                "bluesky_base_url": self.urls["bluesky"],
                "bluesky_handle": self.bluesky.handle,
                "bluesky_app_password": self.bluesky.password,
            },
            "x": {"x_base_url": self.urls["x"], "x_access_token": self.x.token},
            "zendesk": {
                "zendesk_base_url": self.urls["zendesk"],
                "zendesk_email": self.zendesk.email,
                "zendesk_api_token": self.zendesk.api_token,
                "zendesk_section_id": str(ZENDESK_SECTION_ID),
                "zendesk_permission_group_id": ZENDESK_PERMISSION_GROUP_ID,
            },
            "freshdesk": {
                "freshdesk_base_url": self.urls["freshdesk"],
                "freshdesk_api_key": self.freshdesk.api_key,
                "freshdesk_folder_id": str(FRESHDESK_FOLDER_ID),
            },
        }

    @property
    def webhook_url(self) -> str:
        return f"{self.urls['webhook']}/hook"

    def mark(self) -> dict[str, int]:
        """How much each provider has received so far (for ``received_since``)."""
        return {
            "webhook": len(self.webhook.received),
            "email": len(self.smtp.received),
            "sms": len(self.twilio.messages),
            "mastodon": len(self.mastodon.requests),
            "bluesky": len(self.bluesky.requests),
            "x": len(self.x.requests),
            "zendesk": len(self.zendesk.received),
            "freshdesk": len(self.freshdesk.received),
        }

    def received_since(self, mark: dict[str, int], settings: Settings, incident_url: str) -> dict[str, Seen]:
        """Per provider channel: the one rendition its provider received since ``mark``, read back
        from the request, or why there is not exactly one."""
        new = {name: list(self._records(name))[count:] for name, count in mark.items()}
        seen: dict[str, Seen] = {}
        for name, records in new.items():
            if name in ("zendesk", "freshdesk"):
                records = [r for r in records if _ARTICLE_WRITE[name].search(r.path)]
            if len(records) != 1:
                seen[name] = f"{len(records)} requests reached the {name} provider, expected 1"
                continue
            seen[name] = _READERS[name](records[0], settings, incident_url)
        return seen

    def _records(self, name: str) -> list[Any]:
        records: dict[str, list[Any]] = {
            "webhook": self.webhook.received,
            "email": self.smtp.received,
            "sms": self.twilio.messages,
            "mastodon": self.mastodon.requests,
            "bluesky": self.bluesky.requests,
            "x": self.x.requests,
            "zendesk": self.zendesk.received,
            "freshdesk": self.freshdesk.received,
        }
        return records[name]


Seen = dict[str, Any] | str
"""A rendition rebuilt from a provider's request, or the reason it could not be."""

# The request that carries the article: Zendesk's create or translation write (a labels-only
# PUT may follow it), Freshdesk's create or update.
_ARTICLE_WRITE = {
    "zendesk": re.compile(r"/sections/\d+/articles\.json$|/translations/[\w-]+\.json$"),
    "freshdesk": re.compile(r"/folders/\d+/articles$|/solutions/articles/\d+$"),
}
# What a rendition's fields become at each provider, read back. Fields the channel computes
# from the text (length, SMS encoding and segments) are recomputed with the channel's own
# functions; ``reply_to`` is null in every social rendition because ``render`` never sees
# the thread (``publish`` picks the post to reply to), so it is null here too.


def _webhook(item: dict[str, Any], settings: Settings, incident_url: str) -> Seen:
    if not item["verified"]:
        return "webhook signature did not verify"
    return dict(json.loads(item["body"]))


def _email(item: Any, settings: Settings, incident_url: str) -> Seen:
    mail: EmailMessage = item.message
    if item.rcpt_tos != (str(mail["To"]),):
        return f"envelope recipients {item.rcpt_tos} differ from To: {mail['To']}"
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and html is not None
    wire_only = {"Subject", "MIME-Version", "Content-Type"}  # written by deliver, not in a rendition
    rendition = {  # a part's lines end in CRLF on the wire (RFC 5322), in LF in a rendition
        "subject": str(mail["Subject"]),
        "text": text.get_content().replace("\r\n", "\n"),
        "html": html.get_content().replace("\r\n", "\n"),
        "headers": {name: str(value) for name, value in mail.items() if name not in wire_only},
    }
    return dict(_unsign_links(rendition, settings.public_url))


def _unsign_links(value: Any, public_url: str) -> Any:
    """The recipient's signed links put back as the rendition's placeholders."""
    if isinstance(value, dict):
        return {k: _unsign_links(v, public_url) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    base = re.escape(public_url)
    value = re.sub(base + r"/unsubscribe\?token=[\w.-]+", "{{unsubscribe_url}}", value)
    return re.sub(base + r"/subscriptions/manage\?token=[\w.-]+", "{{manage_url}}", value)


def _sms(item: dict[str, Any], settings: Settings, incident_url: str) -> Seen:
    body = str(item["body"])
    return {
        "text": body,
        "encoding": sms.encoding_of(body),
        "segments": sms.segment_count(body),
        "characters": len(body),
        "max_segments": sms.SmsSettings.from_core(settings).sms_max_segments,  # type: ignore[union-attr]
    }


def _mastodon(item: dict[str, Any], settings: Settings, incident_url: str) -> Seen:
    text = str(item["params"]["status"])
    return {"text": text, "length": mastodon.measure(text), "limit": mastodon.LIMIT, "reply_to": None}


def _bluesky(item: dict[str, Any], settings: Settings, incident_url: str) -> Seen:
    record = item["record"]
    text = str(record["text"])
    if record.get("facets") != bluesky.link_facets(text, incident_url):
        return f"facets {record.get('facets')} do not link {incident_url} in {text!r}"
    return {"text": text, "length": bluesky.measure(text), "limit": bluesky.LIMIT, "reply_to": None}


def _x(item: dict[str, Any], settings: Settings, incident_url: str) -> Seen:
    text = str(item["text"])
    return {"text": text, "length": x.weighted_length(text), "limit": x.LIMIT, "reply_to": None}


def _zendesk(item: Any, settings: Settings, incident_url: str) -> Seen:
    article = item.json.get("article") or item.json.get("translation")
    return {"title": article["title"], "body_html": article["body"]}


def _freshdesk(item: Any, settings: Settings, incident_url: str) -> Seen:
    return {"title": item.json["title"], "body_html": item.json["description"]}


_READERS = {
    "webhook": _webhook,
    "email": _email,
    "sms": _sms,
    "mastodon": _mastodon,
    "bluesky": _bluesky,
    "x": _x,
    "zendesk": _zendesk,
    "freshdesk": _freshdesk,
}


@contextlib.asynccontextmanager
async def all_providers() -> AsyncIterator[Providers]:
    """Serve every local provider on loopback for the block."""
    with recording_smtp() as smtp:
        providers = Providers(smtp)
        apps = {
            "twilio": providers.twilio.app,
            "mastodon": providers.mastodon.app,
            "bluesky": providers.bluesky.app,
            "x": providers.x.app,
            "zendesk": providers.zendesk.app,
            "freshdesk": providers.freshdesk.app,
            "webhook": providers.webhook.app(),
        }
        async with contextlib.AsyncExitStack() as stack:
            for name, app in apps.items():
                providers.urls[name] = await stack.enter_async_context(serve_app(app))
            providers.zendesk.base_url = providers.urls["zendesk"]
            yield providers


@dataclass
class Stack:
    """The app in-process (real database and Redis), a client with an admin token."""

    settings: Settings
    runtime: Runtime
    client: httpx.AsyncClient
    auth: dict[str, str]

    async def subscribe(self, channel: str, address: str) -> dict[str, Any]:
        """A confirmed subscriber to every component (the admin API skips opt-in)."""
        response = await self.client.post(
            "/api/v1/subscribers", headers=self.auth, json={"channel": channel, "address": address, "confirmed": True}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def subscribe_everyone(self, providers: Providers) -> dict[str, dict[str, Any]]:
        """One subscriber per subscriber channel: {channel: the API's answer}."""
        subscribed = {
            "email": await self.subscribe("email", EMAIL),
            "sms": await self.subscribe("sms", PHONE),
            "webhook": await self.subscribe("webhook", providers.webhook_url),
        }
        providers.webhook.secret = subscribed["webhook"]["secret"]
        return subscribed


async def empty_database(database_url: str) -> None:
    """Delete every row (what ``tests.conftest.clean_database`` does, for module-scoped setups)."""
    engine = make_engine(database_url, pool=False)
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))
    await engine.dispose()


@contextlib.asynccontextmanager
async def app_stack(settings: Settings) -> AsyncIterator[Stack]:
    """Runtime, app (lifespan run) and an authorised client for ``settings``, on an empty database."""
    await empty_database(settings.database_url)
    runtime = Runtime.build(settings)
    try:
        async with runtime.engine.begin() as conn:
            token = await create_token(conn, "tests")
        app = create_app(settings, runtime)
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.public_url) as client,
        ):
            yield Stack(settings, runtime, client, {"Authorization": f"Bearer {token}"})
    finally:
        pool = await runtime.queue.pool()
        await pool.delete(settings.queue_name)
        await runtime.aclose()
