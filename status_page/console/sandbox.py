"""``/console/sandbox``: what each channel's provider received, while ``broadcaster up`` runs the sandbox.

The sandbox (``python -m sandbox``) records every request its providers accepted and serves
them at ``GET /outbox?after=N``. This page reads that, groups it the way each provider shows
it (social posts as threads, articles with their revisions), checks each webhook's signature
against its subscriber's secret with the Standard Webhooks library, and re-renders the
fragment whenever something new arrives (the page polls ``/console/sandbox/fragment``).
"""

from __future__ import annotations

import binascii
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from broadcaster.domain.subscribers import webhook_secrets
from broadcaster.i18n import N_, gettext
from broadcaster.render import environment
from status_page.console import sandbox_chat
from status_page.console._kit import page, viewer
from status_page.http import HTTPError, runtime

CHANNELS = {  # product names stay as they are; the rest is translated when shown
    "email": N_("Email"),
    "sms": N_("SMS (Twilio)"),
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "x": "X",
    "zendesk": "Zendesk Guide",
    "freshdesk": "Freshdesk Solutions",
    "webhook": N_("Webhooks"),
    "slack": N_("Slack (webhooks)"),
    "slack_bot": N_("Slack bot"),
    "teams": "Microsoft Teams",
    "discord": N_("Discord (webhooks)"),
    "discord_forum": N_("Discord forum"),
    "google_chat": "Google Chat",
}
PAGE_SIZE = 500  # the sandbox's most events per answer
MAX_EVENTS = 2000  # what the sandbox keeps
SHOWN_PER_CHANNEL = 30
THREADING_HEADERS = ("Message-ID", "In-Reply-To", "References", "List-Unsubscribe", "List-Unsubscribe-Post")


async def fetch_events(sandbox_url: str) -> list[dict[str, Any]]:
    """Every event the sandbox holds, oldest first."""
    events: list[dict[str, Any]] = []
    after = 0
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=2.0) as client:
        while len(events) < MAX_EVENTS:
            response = await client.get("/outbox", params={"after": after})
            response.raise_for_status()
            batch = response.json()["events"]
            events.extend(batch)
            if len(batch) < PAGE_SIZE:
                break
            after = batch[-1]["seq"]
    return events


def _threads(posts: list[dict[str, Any]], key: str, parent: str) -> list[list[dict[str, Any]]]:
    """Posts grouped into reply chains, newest thread first; each thread in posting order."""
    root_of: dict[str, str] = {}
    threads: dict[str, list[dict[str, Any]]] = {}
    for post in posts:
        data = post["data"]
        parent_id = data.get(parent)
        root = root_of.get(parent_id, parent_id) if parent_id else data[key]
        root_of[data[key]] = root
        threads.setdefault(root, []).append(post)
    return sorted(threads.values(), key=lambda thread: thread[-1]["seq"], reverse=True)


def _articles(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each article's revisions in order, the most recently written article first."""
    articles: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        articles.setdefault(str(event["data"]["article_id"]), []).append(event)
    return sorted(articles.values(), key=lambda revisions: revisions[-1]["seq"], reverse=True)


def signature_verified(secret: str, headers: dict[str, str], body: str) -> bool:
    """Whether ``webhook-signature`` is the Standard Webhooks signature of the body under ``secret``.

    The signature is recomputed with the ``standardwebhooks`` library; unlike its ``verify``, the
    age of the timestamp does not matter here (the page is read long after delivery).
    """
    try:
        timestamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        expected = Webhook(secret).sign(headers["webhook-id"], timestamp, body).split(",", 1)[1]
    except (KeyError, ValueError, binascii.Error):
        return False
    given = [item.split(",", 1)[1] for item in headers.get("webhook-signature", "").split() if item.startswith("v1,")]
    return any(hmac.compare_digest(expected, signature) for signature in given)


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


async def _webhooks(request: Request, events: list[dict[str, Any]], sandbox_url: str) -> list[dict[str, Any]]:
    addresses = {sandbox_url + event["data"]["path"] for event in events}
    async with runtime(request).engine.connect() as conn:
        secrets = await webhook_secrets(conn, addresses)
    shown = []
    for event in reversed(events[-SHOWN_PER_CHANNEL:]):
        data = event["data"]
        secret = secrets.get(sandbox_url + data["path"])
        verified = None if secret is None else signature_verified(secret, data["headers"], data["body"])
        shown.append({**event, "verified": verified, "pretty": _pretty(data["body"])})
    return shown


def _emails(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = []
    for event in reversed(events[-SHOWN_PER_CHANNEL:]):
        headers = event["data"]["headers"]
        threading = [(name, value) for name, value in headers if name in THREADING_HEADERS]
        shown.append({**event, "threading": threading})
    return shown


async def outbox_view(request: Request, sandbox_url: str) -> dict[str, Any]:
    """The fragment's context: per channel what its provider received, as that provider shows it."""
    events = await fetch_events(sandbox_url)
    by_channel: dict[str, list[dict[str, Any]]] = {name: [] for name in CHANNELS}
    for event in events:
        by_channel.setdefault(event["channel"], []).append(event)
    enabled = set(runtime(request).registry.enabled)
    return {
        "channels": [
            (name, gettext(title), name in enabled, len(by_channel[name])) for name, title in CHANNELS.items()
        ],
        "last": events[-1]["seq"] if events else 0,
        "email": _emails(by_channel["email"]),
        "sms": list(reversed(by_channel["sms"][-SHOWN_PER_CHANNEL:])),
        "mastodon": _threads(by_channel["mastodon"], "id", "in_reply_to_id")[:SHOWN_PER_CHANNEL],
        "bluesky": _threads(by_channel["bluesky"], "uri", "reply_parent")[:SHOWN_PER_CHANNEL],
        "x": _threads(by_channel["x"], "id", "in_reply_to_tweet_id")[:SHOWN_PER_CHANNEL],
        "zendesk": _articles(by_channel["zendesk"])[:SHOWN_PER_CHANNEL],
        "freshdesk": _articles(by_channel["freshdesk"])[:SHOWN_PER_CHANNEL],
        "webhook": await _webhooks(request, by_channel["webhook"], sandbox_url),
        "slack": sandbox_chat.slack_posts(by_channel["slack"], sandbox_url),
        "slack_bot": sandbox_chat.slack_threads(by_channel["slack_bot"]),
        "teams": sandbox_chat.teams_cards(by_channel["teams"]),
        "discord": sandbox_chat.discord_messages(by_channel["discord"]),
        "discord_forum": sandbox_chat.discord_posts(by_channel["discord_forum"]),
        "google_chat": sandbox_chat.google_chat_threads(by_channel["google_chat"]),
    }


def _sandbox_url(request: Request) -> str:
    url: str = runtime(request).settings.sandbox_url
    if not url:
        raise HTTPError(404, "not_found", "the sandbox is off (broadcaster up starts it)")
    return url


async def _view_or_error(request: Request) -> dict[str, Any]:
    try:
        return await outbox_view(request, _sandbox_url(request))
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise HTTPError(502, "sandbox_unreachable", f"the sandbox did not answer: {type(exc).__name__}") from exc


def _fragment(view: dict[str, Any]) -> str:
    return environment().get_template("console/sandbox_outbox.html").render(**view)


async def sandbox_page(request: Request) -> Response:
    user = viewer(request)
    view = await _view_or_error(request)
    return page(request, "console/sandbox.html", user, fragment=_fragment(view), last=view["last"])


async def _nothing_after(sandbox_url: str, after: int) -> bool:
    """Whether the sandbox holds nothing newer than ``after`` (one small request, polled often)."""
    try:
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=2.0) as client:
            answer = (await client.get("/outbox", params={"after": after})).json()
    except (httpx.HTTPError, ValueError):
        return False  # the full view reports the error
    return not answer.get("events") and answer.get("last") == after


async def sandbox_fragment(request: Request) -> Response:
    """``{"last": N, "html": ...}``, or 204 when nothing arrived since ``?after=N``."""
    viewer(request)
    after = request.query_params.get("after", "")
    if after.isdigit() and await _nothing_after(_sandbox_url(request), int(after)):
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    view = await _view_or_error(request)
    return JSONResponse({"last": view["last"], "html": _fragment(view)}, headers={"Cache-Control": "no-store"})


routes: list[BaseRoute] = [
    Route("/console/sandbox", sandbox_page, methods=["GET"]),
    Route("/console/sandbox/fragment", sandbox_fragment, methods=["GET"]),
]
