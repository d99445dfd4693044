"""The sandbox's outbox: what each provider accepted, as numbered events, the latest kept.

    outbox.record("x", {"id": "186...", "text": "...", "in_reply_to_tweet_id": None})
    outbox.after(0)  # -> ([{"seq": 1, "channel": "x", "at": "2026-...Z", "data": {...}}], 1)

One event per accepted request (a 2xx), in the order accepted; the functions below turn each
provider's own record into the event's ``data``. The providers call in from the server's
event loop and, for SMTP, from aiosmtpd's thread, hence the lock.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from sandbox.providers.twilio import encoding_and_segments
from sandbox.smtp import Received

CHANNELS = (
    "email",
    "sms",
    "mastodon",
    "bluesky",
    "x",
    "zendesk",
    "freshdesk",
    "webhook",
    "slack",
    "slack_bot",
    "teams",
    "discord",
    "discord_forum",
    "google_chat",
)
KEEP = 2000  # events kept; older ones are dropped
PAGE = 500  # events per answer at most


class Outbox:
    """The last ``keep`` events, numbered from 1 in the order they were recorded."""

    def __init__(self, keep: int = KEEP) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._seq = 0
        self._revisions: dict[tuple[str, str], int] = {}  # (channel, article id) -> content writes
        self._lock = threading.Lock()

    def record(self, channel: str, data: dict[str, Any]) -> dict[str, Any]:
        """Append an event for ``channel`` (one of ``CHANNELS``) and return it."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown outbox channel {channel!r}")
        with self._lock:
            self._seq += 1
            event = {"seq": self._seq, "channel": channel, "at": _now(), "data": data}
            self._events.append(event)
        return event

    def after(self, seq: int, limit: int = PAGE) -> tuple[list[dict[str, Any]], int]:
        """(events numbered above ``seq``, oldest first, at most ``limit``; the number to ask after next).

        The number is the last event's of the answer, or with none the latest recorded (0 when
        none was): below ``seq`` it tells a poller that the sandbox restarted.
        """
        with self._lock:
            events = [event for event in self._events if event["seq"] > seq][:limit]
            return events, events[-1]["seq"] if events else self._seq

    def article(self, channel: str, article_id: str, title: str, body_html: str) -> dict[str, Any]:
        """Record a content write of a knowledge-base article: its first is revision 1, "created"."""
        with self._lock:
            revision = self._revisions.get((channel, article_id), 0) + 1
            self._revisions[(channel, article_id)] = revision
        data = {
            "article_id": article_id,
            "title": title,
            "body_html": body_html,
            "revision": revision,
            "action": "created" if revision == 1 else "updated",
        }
        return self.record(channel, data)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def email_data(received: Received) -> dict[str, Any]:
    """A mail as the SMTP catcher accepted it: envelope, decoded headers, text and HTML parts."""
    message = received.message
    return {
        "mail_from": received.mail_from,
        "rcpt_tos": list(received.rcpt_tos),
        "subject": str(message["Subject"] or ""),
        "headers": [[name, str(value)] for name, value in message.items()],
        "text": _part(message, "plain"),
        "html": _part(message, "html"),
    }


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body((subtype,))
    if part is None:
        return None
    content = part.get_content()
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def sms_data(resource: dict[str, Any]) -> dict[str, Any]:
    """A message Twilio accepted (its resource), with the encoding and parts it goes out in."""
    body = str(resource["body"])
    encoding, segments = encoding_and_segments(body)
    return {
        "to": resource["to"],
        "from": resource["from"] or resource["messaging_service_sid"],
        "body": body,
        "encoding": encoding,
        "segments": segments,
        "sid": resource["sid"],
    }


def mastodon_data(status: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "text", "in_reply_to_id", "visibility", "url")
    return {key: status.get(key) for key in keys}


def bluesky_data(record: dict[str, Any]) -> dict[str, Any]:
    """A post the PDS stored (``{uri, cid, value}``): its text, reply refs and facets."""
    value = record["value"]
    reply = value.get("reply") or {}
    return {
        "uri": record["uri"],
        "text": value.get("text"),
        "reply_parent": (reply.get("parent") or {}).get("uri"),
        "reply_root": (reply.get("root") or {}).get("uri"),
        "facets": list(value.get("facets") or []),
    }


def x_data(tweet: dict[str, Any]) -> dict[str, Any]:
    return {key: tweet.get(key) for key in ("id", "text", "in_reply_to_tweet_id")}


def webhook_data(path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {"path": path, "headers": headers, "body": body.decode(errors="replace")}


def slack_data(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(outbox channel, data) of a Slack post: ``slack`` a webhook's, ``slack_bot`` the bot's posts and edits."""
    content = {"text": entry["text"], "blocks": entry["blocks"]}
    if entry["via"] == "webhook":
        return "slack", {"hook": entry["hook"], **content}
    keys = ("channel", "ts", "thread_ts")
    return "slack_bot", {**{key: entry[key] for key in keys}, "edited": entry["action"] == "update", **content}


def teams_data(entry: dict[str, Any]) -> dict[str, Any]:
    """A workflow run: the Adaptive Card it carried."""
    attachments = entry["message"].get("attachments") or [{}]
    return {"workflow": entry["workflow"], "run_id": entry["run_id"], "card": attachments[0].get("content") or {}}


def discord_data(message: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "channel_id", "webhook_id", "thread_name", "content", "embeds")
    return {key: message.get(key) for key in keys}


def google_chat_data(message: dict[str, Any]) -> dict[str, Any]:
    thread = message["thread"]
    return {
        "name": message["name"],
        "space": message["space"]["name"],
        "thread": thread["name"],
        "thread_key": thread.get("threadKey"),
        "reply": message["threadReply"],
        "cards": [item["card"] for item in message["cardsV2"]],
    }
