"""The sandbox outbox's chat sections: each service's messages as its own client groups them.

Slack webhook posts one by one and the bot's thread per incident (its root as last edited,
then the replies); Teams cards; Discord embeds, the forum's by post; Google Chat messages by
thread. Webhook URLs are secrets: only ``mask_url`` of them is shown.
"""

from __future__ import annotations

from typing import Any

from broadcaster.security import mask_url

SHOWN = 30


def _slack_view(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A Block Kit message's parts, for showing: header, section texts, context texts, buttons."""
    view: dict[str, Any] = {"header": "", "sections": [], "context": [], "buttons": []}
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            view["header"] = block["text"]["text"]
        elif kind == "section" and "text" in block:
            view["sections"].append(block["text"]["text"])
        elif kind == "context":
            view["context"].extend(element.get("text", "") for element in block.get("elements", []))
        elif kind == "actions":
            view["buttons"].extend((b["text"]["text"], b.get("url", "")) for b in block.get("elements", []))
    return view


def slack_posts(events: list[dict[str, Any]], sandbox_url: str) -> list[dict[str, Any]]:
    """The webhook posts, newest first, each with its masked hook URL."""
    return [
        {
            **event,
            "hook": mask_url(f"{sandbox_url}/slack/services/{event['data']['hook']}"),
            "view": _slack_view(event["data"]["blocks"]),
        }
        for event in reversed(events[-SHOWN:])
    ]


def slack_threads(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bot's threads, newest first: the root as it reads now (and how often edited), then its replies."""
    threads: dict[str, dict[str, Any]] = {}
    for event in events:
        data = event["data"]
        root = data["thread_ts"] or data["ts"]
        thread = threads.setdefault(root, {"root": None, "edits": 0, "replies": [], "seq": 0})
        thread["seq"] = event["seq"]
        view = {**event, "view": _slack_view(data["blocks"])}
        if data["thread_ts"]:
            thread["replies"].append(view)
        else:
            thread["root"] = view
            thread["edits"] += 1 if data["edited"] else 0
    ordered = sorted(threads.values(), key=lambda thread: thread["seq"], reverse=True)
    return [thread for thread in ordered if thread["root"] is not None][:SHOWN]


def teams_cards(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each card's text blocks, facts and link buttons, newest first."""
    shown = []
    for event in reversed(events[-SHOWN:]):
        card = event["data"]["card"]
        body = card.get("body", [])
        shown.append(
            {
                **event,
                "texts": [e["text"] for e in body if e.get("type") == "TextBlock" and not e.get("isSubtle")],
                "small": [e["text"] for e in body if e.get("type") == "TextBlock" and e.get("isSubtle")],
                "facts": [(f["title"], f["value"]) for e in body if e.get("type") == "FactSet" for f in e["facts"]],
                "actions": [(a.get("title", ""), a.get("url", "")) for a in card.get("actions", [])],
                "version": card.get("version"),
            }
        )
    return shown


def discord_messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each message's first embed (its colour as #rrggbb), newest first."""
    shown = []
    for event in reversed(events[-SHOWN:]):
        embed = (event["data"]["embeds"] or [{}])[0]
        shown.append({**event, "embed": embed, "colour": f"#{int(embed.get('color') or 0):06x}"})
    return shown


def discord_posts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The forum's posts (threads), newest first, each with its messages in order."""
    posts: dict[str, dict[str, Any]] = {}
    for message in reversed(discord_messages(events)):
        data = message["data"]
        post = posts.setdefault(data["channel_id"], {"name": data["thread_name"], "messages": [], "seq": 0})
        post["messages"].append(message)
        post["seq"] = message["seq"]
    return sorted(posts.values(), key=lambda post: post["seq"], reverse=True)


def google_chat_threads(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages grouped by thread (newest thread first), each card's header and paragraphs."""
    threads: dict[str, dict[str, Any]] = {}
    for event in events[-SHOWN * 3 :]:
        data = event["data"]
        card = (data["cards"] or [{}])[0]
        widgets = [w for section in card.get("sections", []) for w in section.get("widgets", [])]
        decorated = [w["decoratedText"] for w in widgets if "decoratedText" in w]
        message = {
            **event,
            "title": (card.get("header") or {}).get("title", ""),
            "paragraphs": [w["textParagraph"]["text"] for w in widgets if "textParagraph" in w],
            "facts": [(d.get("topLabel", ""), d["text"]) for d in decorated],
        }
        thread = threads.setdefault(data["thread"], {"key": data["thread_key"], "messages": [], "seq": 0})
        thread["messages"].append(message)
        thread["seq"] = event["seq"]
    return sorted(threads.values(), key=lambda thread: thread["seq"], reverse=True)[:SHOWN]
