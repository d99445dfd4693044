"""Drafts: alerts grouped into the update they propose, shown to the commander, published once.

``receive`` takes a sender's alerts. Each goes to the first rule of its source that matches; per rule,
alerts join the rule's open **group** (one problem: its alerts by fingerprint, its drafts, its incident):

- a firing alert with no open group opens one with an **opening** draft (``rules.opening_body``), due to
  publish itself after the rule's ``auto_publish_after_s`` if it has one; a firing alert the group knows
  as firing changes nothing, so a delivery repeated (or retried) is idempotent;
- when every alert of a group has resolved, a published group gets a **resolve** draft on its incident;
  an unpublished one stops its auto-publish (publishing it later proposes the resolve at once);
- a resolved alert that fires again discards the pending resolve draft.

Each rule's alerts are taken in one transaction that first writes the rule's row (its ``last_alert_at``),
so two deliveries at once queue behind each other on every backend instead of opening two groups.
``publish`` posts through ``broadcaster.posting`` (``publication`` decides what), ``discard`` drops one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster import posting
from broadcaster.actors import Actor
from broadcaster.alerts import notices, publication
from broadcaster.alerts import rules as rule_store
from broadcaster.alerts.sources import Alert, matches
from broadcaster.db import alert_groups, alert_rules, drafts, incidents, new_id, utcnow
from broadcaster.delivery.channel import Rendition
from broadcaster.domain import audit
from broadcaster.errors import Conflict
from broadcaster.models import CLOSED_STATUSES, AlertSource, DraftKind, DraftState
from broadcaster.post_requests import DraftPublication, PostResult
from broadcaster.render import iso
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)

Row = dict[str, Any]
EVENT = "draft"  # on the bus: the console's banner and lists


@dataclass
class Intake:
    """What one delivery did: alerts read, matched by a rule, drafts created or changed."""

    alerts: int = 0
    matched: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


async def _open_group(conn: AsyncConnection, rule_id: str) -> Row | None:
    """The rule's open group; one whose incident was closed by hand meanwhile is closed first."""
    row = (
        (
            await conn.execute(
                select(alert_groups, incidents.c.status.label("incident_status"))
                .outerjoin(incidents, incidents.c.id == alert_groups.c.incident_id)
                .where(alert_groups.c.rule_id == rule_id, alert_groups.c.closed_at.is_(None))
                .order_by(alert_groups.c.created_at.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    if row["incident_status"] in CLOSED_STATUSES:
        await conn.execute(alert_groups.update().where(alert_groups.c.id == row["id"]).values(closed_at=utcnow()))
        return None
    group = dict(row)
    group["alerts"] = dict(group["alerts"] or {})
    return group


async def _pending(conn: AsyncConnection, group_id: str, kind: DraftKind) -> str | None:
    query = select(drafts.c.id).where(
        drafts.c.group_id == group_id, drafts.c.kind == kind.value, drafts.c.state == DraftState.PENDING.value
    )
    return (await conn.execute(query)).scalar()


def _seen(alert: Alert, now: datetime) -> dict[str, Any]:
    return {"firing": alert.firing, "summary": alert.summary, "url": alert.url, "at": iso(now)}


async def _open(conn: AsyncConnection, rule: Row, alert: Alert, now: datetime) -> tuple[Row, str]:
    """A new group for ``rule`` with its opening draft."""
    group: Row = {
        "id": new_id(),
        "rule_id": rule["id"],
        "source": rule["source"],
        "alerts": {alert.fingerprint: _seen(alert, now)},
        "first_alert_at": now,
        "last_alert_at": now,
        "incident_id": None,
        "created_at": now,
    }
    await conn.execute(alert_groups.insert().values(**group))
    body = await rule_store.opening_body(conn, rule, alert)
    after = rule["auto_publish_after_s"]
    draft_id = new_id()
    await conn.execute(
        drafts.insert().values(
            id=draft_id,
            group_id=group["id"],
            kind=DraftKind.OPEN.value,
            state=DraftState.PENDING.value,
            body=body,
            publish_at=now + timedelta(seconds=after) if after is not None else None,
            created_at=now,
            updated_at=now,
        )
    )
    return group, draft_id


async def _take(conn: AsyncConnection, rule: Row, alerts: Sequence[Alert], now: datetime, intake: Intake) -> None:
    """Apply one rule's alerts to its open group (see the module docstring)."""
    group = await _open_group(conn, rule["id"])
    changed: set[str] = set()
    for alert in alerts:
        known = group["alerts"].get(alert.fingerprint) if group else None
        if alert.firing:
            if group is None:
                group, draft_id = await _open(conn, rule, alert, now)
                intake.created.append(draft_id)
                continue
            if known and known["firing"]:
                continue  # the same alert again
            group["alerts"][alert.fingerprint] = _seen(alert, now)
            resolve = await _pending(conn, group["id"], DraftKind.RESOLVE)
            if resolve:
                await _decide(conn, resolve, DraftState.DISCARDED, "system:alerts", now)
                changed.add(resolve)
            opening = await _pending(conn, group["id"], DraftKind.OPEN)
            if opening:
                changed.add(opening)
            continue
        if group is None or not known or not known["firing"]:
            continue  # a resolve of nothing we hold, or the same resolve again
        group["alerts"][alert.fingerprint] = _seen(alert, now)
        if not publication.all_resolved(group):
            continue
        if group["incident_id"]:
            created = await publication.add_resolve_draft(conn, group["id"], _resolve_body(group, rule))
            intake.created.extend([created] if created else [])
            continue
        opening = await _pending(conn, group["id"], DraftKind.OPEN)
        if opening:  # never publish "investigating" by itself for a problem that is over
            await conn.execute(drafts.update().where(drafts.c.id == opening).values(publish_at=None, updated_at=now))
            changed.add(opening)
        else:  # its opening was discarded: nothing public to resolve
            await conn.execute(alert_groups.update().where(alert_groups.c.id == group["id"]).values(closed_at=now))
    if group is not None:
        await conn.execute(
            alert_groups.update()
            .where(alert_groups.c.id == group["id"])
            .values(alerts=group["alerts"], last_alert_at=now)
        )
    for draft_id in changed - set(intake.created):
        await conn.execute(drafts.update().where(drafts.c.id == draft_id).values(updated_at=now))
        intake.updated.append(draft_id)


def _resolve_body(group: Row, rule: Row) -> dict[str, Any]:
    return {**rule_store.resolve_body(), "title": next(iter(group["alerts"].values()))["summary"]}


async def receive(rt: Runtime, source: AlertSource, alerts: Sequence[Alert], actor: Actor) -> Intake:
    """Match ``alerts`` to rules and update the drafts; the commanders hear of each new draft."""
    intake = Intake(alerts=len(alerts))
    async with rt.engine.connect() as conn:
        rules = await rule_store.list_rules(conn, source)
    taken: dict[str, list[Alert]] = {}
    for alert in alerts:
        rule = next((r for r in rules if matches(alert, r["match"])), None)
        if rule is not None:
            taken.setdefault(rule["id"], []).append(alert)
            intake.matched += 1
    for rule in (r for r in rules if r["id"] in taken):
        async with rt.engine.begin() as conn:
            now = utcnow()
            locked = await conn.execute(
                alert_rules.update().where(alert_rules.c.id == rule["id"]).values(last_alert_at=now)
            )
            if not locked.rowcount:  # deleted since it was read
                continue
            before = len(intake.created)
            await _take(conn, rule, taken[rule["id"]], now, intake)
            for draft_id in intake.created[before:]:
                await audit.record(conn, str(actor), "draft.propose", target=draft_id, source=source.value)
    for draft_id in intake.created:
        await rt.bus.publish(EVENT, {"draft_id": draft_id, "state": DraftState.PENDING.value})
        await notices.enqueue(rt, draft_id)
    for draft_id in intake.updated:
        await rt.bus.publish(EVENT, {"draft_id": draft_id, "state": "updated"})
    if intake.created:
        log.info("alerts from %s proposed %d draft(s)", source.value, len(intake.created))
    return intake


async def _decide(conn: AsyncConnection, draft_id: str, state: DraftState, actor: str, now: datetime) -> bool:
    result = await conn.execute(
        drafts.update()
        .where(drafts.c.id == draft_id, drafts.c.state == DraftState.PENDING.value)
        .values(state=state.value, publish_at=None, decided_at=now, decided_by=actor, updated_at=now)
    )
    return bool(result.rowcount)


async def discard(rt: Runtime, draft_id: str, actor: Actor) -> None:
    """Drop a pending draft (404 unknown, 409 already decided); its group keeps its alerts, so they stay quiet."""
    async with rt.engine.begin() as conn:
        draft, _group = await publication.load(conn, draft_id)
        if not await _decide(conn, draft_id, DraftState.DISCARDED, str(actor), utcnow()):
            raise Conflict(f"the draft is {draft['state']}", {"draft_id": f"already {draft['state']}"})
        await audit.record(conn, str(actor), "draft.discard", target=draft_id, kind=draft["kind"])
    await rt.bus.publish(EVENT, {"draft_id": draft_id, "state": DraftState.DISCARDED.value})


async def publish(
    rt: Runtime,
    draft_id: str,
    actor: Actor,
    *,
    title: str | None = None,
    message: str | None = None,
    idempotency_key: str | None = None,
) -> PostResult:
    """Post the draft through the one posting service (once: see ``publication``)."""
    result = await posting.post(
        rt, DraftPublication(draft_id, title, message), actor=actor, idempotency_key=idempotency_key
    )
    await rt.bus.publish(EVENT, {"draft_id": draft_id, "state": DraftState.PUBLISHED.value})
    return result


async def preview(
    rt: Runtime, draft_id: str, actor: Actor, *, title: str | None = None, message: str | None = None
) -> dict[str, Rendition]:
    """Every channel's rendition of the draft as publishing it would send it (``posting.preview``)."""
    return await posting.preview(rt, DraftPublication(draft_id, title, message), actor=actor)


def _listing() -> Any:
    return (
        select(
            drafts,
            alert_groups.c.source,
            alert_groups.c.rule_id,
            alert_groups.c.alerts,
            alert_groups.c.first_alert_at,
            alert_groups.c.last_alert_at,
            alert_groups.c.incident_id,
            alert_rules.c.name.label("rule_name"),
        )
        .join(alert_groups, alert_groups.c.id == drafts.c.group_id)
        .outerjoin(alert_rules, alert_rules.c.id == alert_groups.c.rule_id)
    )


async def list_drafts(
    conn: AsyncConnection, state: DraftState | None = DraftState.PENDING, limit: int = 100
) -> list[Row]:
    """Drafts newest first, each with its group's alerts and rule name."""
    query = _listing().order_by(drafts.c.created_at.desc(), drafts.c.id).limit(limit)
    if state is not None:
        query = query.where(drafts.c.state == state.value)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def get_draft(conn: AsyncConnection, draft_id: str) -> Row:
    """One draft as ``list_drafts`` gives them; 404 naming ``draft_id``."""
    await publication.load(conn, draft_id)
    return dict((await conn.execute(_listing().where(drafts.c.id == draft_id))).mappings().one())


def draft_json(row: Mapping[str, Any], public_url: str = "") -> dict[str, Any]:
    """A draft as the API answers it."""
    body = dict(row["body"] or {})
    return {
        "id": row["id"],
        "kind": row["kind"],
        "state": row["state"],
        "source": row["source"],
        "rule_id": row["rule_id"],
        "rule_name": row["rule_name"],
        "incident_id": row["incident_id"],
        "update_id": row["update_id"],
        "title": body.get("title"),
        "status": body.get("status") or "investigating",
        "message": body.get("message"),
        "components": dict(body.get("components") or {}),
        "body": body,
        "alerts": [{"fingerprint": fp, **seen} for fp, seen in sorted((row["alerts"] or {}).items())],
        "first_alert_at": iso(row["first_alert_at"]),
        "last_alert_at": iso(row["last_alert_at"]),
        "publish_at": iso(row["publish_at"]),
        "decided_at": iso(row["decided_at"]),
        "decided_by": row["decided_by"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "console_url": f"{public_url}/console/drafts/{row['id']}",
    }
