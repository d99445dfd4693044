"""Alert rules in the playbooks' YAML (``broadcaster.crisis.playbook_yaml``, key ``alert_rules``).

Ids do not travel between deployments, so a rule names what it refers to: components, the incident
template and the playbook by name. Export is sorted by rule name with every key present; import
matches rules by name (a rule kept keeps its id, so its open alert groups go on), replaces them with
the file's, and removes the rules the file does not list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.alerts import rules
from broadcaster.db import alert_rules, components, incident_templates, playbooks
from broadcaster.errors import InputError
from broadcaster.schemas import input_error


async def _names(conn: AsyncConnection, table: Any) -> dict[str, str]:
    """id -> name of a table's rows (components: the non-groups first, so a name finds its component)."""
    query = select(table.c.id, table.c.name)
    if table is components:
        query = query.order_by(components.c.is_group, components.c.position, components.c.id)
    return {str(i): str(n) for i, n in (await conn.execute(query)).all()}


async def export_rules(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every rule as plain data, by name."""
    component_names = await _names(conn, components)
    template_names = await _names(conn, incident_templates)
    playbook_names = await _names(conn, playbooks)
    docs = []
    for row in await rules.list_rules(conn):
        docs.append(
            {
                "name": row["name"],
                "source": row["source"],
                "match": dict(sorted((row["match"] or {}).items())),
                "components": dict(
                    sorted((component_names.get(k, k), v) for k, v in (row["components"] or {}).items())
                ),
                "template": template_names.get(row["template_id"] or ""),
                "title": row["title"],
                "message": row["message"],
                "playbook": playbook_names.get(row["playbook_id"] or ""),
                "level": row["level"],
                "auto_publish_after_s": row["auto_publish_after_s"],
            }
        )
    return sorted(docs, key=lambda d: str(d["name"]))


def _ids(names: Mapping[str, str]) -> dict[str, str]:
    """name -> id, the first id of each name winning."""
    out: dict[str, str] = {}
    for row_id, name in names.items():
        out.setdefault(name, row_id)
    return out


def _lookup(ids: Mapping[str, str], name: Any, field: str) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in ids:
        raise InputError("unknown name", {field: f"no {field} named {name!r}"})
    return ids[name]


async def import_rules(conn: AsyncConnection, docs: Sequence[Any]) -> int:
    """Make the stored rules the file's (call inside the import's transaction); returns how many."""
    component_ids = _ids(await _names(conn, components))
    template_ids = _ids(await _names(conn, incident_templates))
    playbook_ids = _ids(await _names(conn, playbooks))
    existing = {r["name"]: r["id"] for r in await rules.list_rules(conn)}
    kept: set[str] = set()
    for i, doc in enumerate(docs):
        where = f"alert_rules[{i}]"
        if not isinstance(doc, dict):
            raise InputError("invalid alert rule", {where: "must be a mapping"})
        try:
            chosen = doc.get("components") or {}
            if not isinstance(chosen, dict):
                raise InputError("invalid alert rule", {"components": "must map component names to statuses"})
            body = {
                **{k: doc.get(k) for k in ("name", "source", "title", "message", "level", "auto_publish_after_s")},
                "match": doc.get("match") or {},
                "components": {_lookup(component_ids, k, "components"): v for k, v in chosen.items()},
                "template_id": _lookup(template_ids, doc.get("template"), "template"),
                "playbook_id": _lookup(playbook_ids, doc.get("playbook"), "playbook"),
            }
            if not body["name"] or body["name"] in kept:
                raise InputError("invalid alert rule", {"name": "each rule needs a name of its own"})
            try:
                data = rules.AlertRuleIn.model_validate(body)
            except ValidationError as exc:
                raise input_error(exc) from None
            saved = await rules.save_rule(conn, data, existing.get(str(body["name"])))
        except InputError as exc:
            fields = {f"{where}.{k}" if k else where: v for k, v in exc.fields.items()} or {where: exc.message}
            raise InputError(exc.message, fields) from None
        kept.add(str(saved["name"]))
    gone = [rule_id for name, rule_id in existing.items() if name not in kept]
    if gone:
        await conn.execute(alert_rules.delete().where(alert_rules.c.id.in_(gone)))
    return len(kept)
