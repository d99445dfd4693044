"""Playbooks as YAML, so an organisation keeps its crisis plan in version control.

The document (``version: 1``) lists ``contacts`` (name, role, email, phone, groups) and
``playbooks`` (name, crisis_type, description, levels); a level names its contacts; ``page``,
once a brand is set, is the page's brand (``PATCH /api/v1/page``'s body, images as data: URLs). Export
is deterministic (sorted by name, levels by number, every key present), so export → import
→ export gives the same text. Import is one transaction: contacts and playbooks are matched
by name and overwritten; a playbook's levels and contact lists are replaced by the file's.
``alert_rules``, once there is one, are the alert rules (``broadcaster.alerts.rules_yaml``): what each
alert means, naming components, templates and playbooks by name; a file with the key replaces them.
A sample set ships as ``broadcaster/data/playbooks.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.alerts import rules_yaml
from broadcaster.crisis import contacts, playbooks
from broadcaster.db import contact_assignments, playbook_levels
from broadcaster.domain.page_brand import BrandPatch, brand_doc, load_brand, save_brand
from broadcaster.errors import InputError
from broadcaster.schemas import validate

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "playbooks.yaml"
VERSION = 1
AGENT_KEYS = ("talking_points", "approved_answers", "do_not_say", "escalation")


def _contact_doc(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "role": row["role"],
        "email": row["email"],
        "phone": row["phone"],
        "groups": sorted(row["groups"] or []),
    }


def _level_doc(level: dict[str, Any]) -> dict[str, Any]:
    agent = level["agent"] or {}
    return {
        "level": level["level"],
        "name": level["name"],
        "title": level["title"],
        "status": level["status"],
        "impact": level["impact"],
        "message": level["message"],
        "talking_points": agent.get("talking_points", ""),
        "approved_answers": [
            {"question": a["question"], "answer": a["answer"]} for a in agent.get("approved_answers") or []
        ],
        "do_not_say": agent.get("do_not_say", ""),
        "escalation": agent.get("escalation", ""),
        "channels": list(level["channels"] or []),
        "cadence_minutes": level["cadence_minutes"],
        "contacts": sorted(c["name"] for c in level.get("contacts", [])),
    }


async def export_data(conn: AsyncConnection) -> dict[str, Any]:
    """Every contact and playbook as plain data, in a stable order."""
    books = []
    for summary in await playbooks.list_playbooks(conn):
        book = await playbooks.get_playbook(conn, summary["id"])
        books.append(
            {
                "name": book["name"],
                "crisis_type": book["crisis_type"],
                "description": book["description"],
                "levels": [_level_doc(level) for level in book["levels"]],
            }
        )
    data: dict[str, Any] = {
        "version": VERSION,
        "contacts": [_contact_doc(c) for c in await contacts.list_contacts(conn)],
        "playbooks": books,
    }
    brand = await load_brand(conn)
    if brand.updated_at is not None:
        data["page"] = brand_doc(brand)
    alert_rules = await rules_yaml.export_rules(conn)
    if alert_rules:
        data["alert_rules"] = alert_rules
    return data


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


async def export_yaml(conn: AsyncConnection) -> str:
    return dump(await export_data(conn))


def _prefixed(exc: InputError, prefix: str) -> InputError:
    fields = {f"{prefix}.{k}" if k else prefix: v for k, v in (exc.fields or {}).items()} or {prefix: exc.message}
    return InputError(exc.message, fields)


def parse(text: str) -> dict[str, Any]:
    """The YAML document as data; a 4xx ``InputError`` when it is not a playbook file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError("not valid YAML", {"file": str(exc)[:500]}) from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise InputError("not a playbook file", {"version": f"expected version: {VERSION}"})
    for key in ("contacts", "playbooks", "alert_rules"):
        if not isinstance(data.get(key) or [], list):
            raise InputError("not a playbook file", {key: "must be a list"})
    if not isinstance(data.get("page") or {}, dict):
        raise InputError("not a playbook file", {"page": "must be a mapping (the page's brand)"})
    return data


def _level_in(doc: dict[str, Any]) -> tuple[playbooks.LevelIn, list[str]]:
    if not isinstance(doc, dict):
        raise InputError("invalid level", {"": "must be a mapping"})
    body = {k: v for k, v in doc.items() if k not in (*AGENT_KEYS, "contacts")}
    body["agent"] = {k: doc[k] for k in AGENT_KEYS if doc.get(k) is not None}
    names = doc.get("contacts") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError("invalid level", {"contacts": "must be a list of contact names"})
    return validate(playbooks.LevelIn, body), names


async def import_data(conn: AsyncConnection, data: dict[str, Any]) -> dict[str, int]:
    """Write the document's contacts, playbooks and brand (call inside one transaction); returns counts."""
    ids: dict[str, str] = {}
    for i, doc in enumerate(data.get("contacts") or []):
        try:
            row = await contacts.upsert_contact(conn, validate(contacts.ContactIn, doc))
        except InputError as exc:
            raise _prefixed(exc, f"contacts[{i}]") from None
        ids[row["name"]] = row["id"]
    known = {c["name"]: c["id"] for c in await contacts.list_contacts(conn)}
    levels = 0
    for i, doc in enumerate(data.get("playbooks") or []):
        where = f"playbooks[{i}]"
        try:
            if not isinstance(doc, dict):
                raise InputError("invalid playbook", {"": "must be a mapping"})
            book_in = validate(playbooks.PlaybookIn, {k: v for k, v in doc.items() if k != "levels"})
            existing = await playbooks.find_playbook(conn, book_in.name)
            book = (
                await playbooks.update_playbook(conn, existing["id"], book_in)
                if existing
                else await playbooks.create_playbook(conn, book_in)
            )
            await conn.execute(playbook_levels.delete().where(playbook_levels.c.playbook_id == book["id"]))
            await conn.execute(contact_assignments.delete().where(contact_assignments.c.playbook_id == book["id"]))
            for j, level_doc in enumerate(doc.get("levels") or []):
                try:
                    level, names = _level_in(level_doc)
                    unknown = [n for n in names if n not in known]
                    if unknown:
                        raise InputError("unknown contacts", {"contacts": f"not in the file: {', '.join(unknown)}"})
                    await playbooks.save_level(conn, book["id"], level)
                    await contacts.assign(conn, [known[n] for n in names], book["id"], level.level)
                except InputError as exc:
                    raise _prefixed(exc, f"levels[{j}]") from None
                levels += 1
        except InputError as exc:
            raise _prefixed(exc, where) from None
    if data.get("page"):
        try:
            await save_brand(conn, validate(BrandPatch, data["page"]))
        except InputError as exc:
            raise _prefixed(exc, "page") from None
    counts = {"contacts": len(ids), "playbooks": len(data.get("playbooks") or []), "levels": levels}
    if "alert_rules" in data:  # after the playbooks: a rule names one
        counts["alert_rules"] = await rules_yaml.import_rules(conn, data["alert_rules"] or [])
    return counts | {"page": 1 if data.get("page") else 0}


async def import_yaml(conn: AsyncConnection, text: str) -> dict[str, int]:
    return await import_data(conn, parse(text))


async def load_sample(conn: AsyncConnection) -> dict[str, int]:
    """Import the sample set that ships with broadcaster (``broadcaster demo`` does)."""
    return await import_yaml(conn, SAMPLE_PATH.read_text(encoding="utf-8"))
