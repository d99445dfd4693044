"""The posting service's part of publishing a draft (``broadcaster.posting`` calls ``plan``).

``plan`` reads the draft and says what it posts: an opening as a new incident (or as its playbook
level's opening, with the level's contacts), a resolve as a follow-up on the group's incident. The
``mark`` it returns runs in the same transaction as the update: the draft becomes published only
if it was still pending (else ``Conflict``, and nothing is kept), an opening gives its group the
incident, and a resolve closes the group. So a draft is published once, whoever publishes it
(a commander, the auto-publish cron, two workers at once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.alerts.rules import resolve_body
from broadcaster.crisis.playbooks import OpenIn
from broadcaster.db import alert_groups, drafts, incidents, new_id, utcnow
from broadcaster.domain.incidents import Posted
from broadcaster.errors import Conflict, NotFound
from broadcaster.models import CLOSED_STATUSES, DraftKind, DraftState
from broadcaster.post_requests import DraftPublication, FollowUp, NewIncident, PlaybookOpening
from broadcaster.schemas import IncidentIn, UpdateIn, validate

Row = dict[str, Any]
Mark = Callable[[AsyncConnection, Posted, str], Awaitable[None]]


async def load(conn: AsyncConnection, draft_id: str) -> tuple[Row, Row]:
    """The draft and its group; 404 naming ``draft_id``."""
    row = (await conn.execute(select(drafts).where(drafts.c.id == draft_id))).mappings().first()
    if row is None:
        raise NotFound("no such draft", {"draft_id": f"unknown draft {draft_id!r}"})
    group = (await conn.execute(select(alert_groups).where(alert_groups.c.id == row["group_id"]))).mappings().one()
    return dict(row), dict(group)


def all_resolved(group: Row) -> bool:
    alerts = group["alerts"] or {}
    return bool(alerts) and not any(a.get("firing") for a in alerts.values())


async def add_resolve_draft(conn: AsyncConnection, group_id: str, body: dict[str, Any]) -> str | None:
    """A pending resolve draft for the group, unless one is pending already; returns the new id."""
    pending = await conn.execute(
        select(drafts.c.id).where(
            drafts.c.group_id == group_id,
            drafts.c.kind == DraftKind.RESOLVE.value,
            drafts.c.state == DraftState.PENDING.value,
        )
    )
    if pending.first() is not None:
        return None
    now, draft_id = utcnow(), new_id()
    await conn.execute(
        drafts.insert().values(
            id=draft_id,
            group_id=group_id,
            kind=DraftKind.RESOLVE.value,
            state=DraftState.PENDING.value,
            body=body,
            created_at=now,
            updated_at=now,
        )
    )
    return draft_id


def _request(
    draft: Row, group: Row, body: dict[str, Any], enabled: Sequence[str]
) -> NewIncident | FollowUp | PlaybookOpening:
    if draft["kind"] == DraftKind.RESOLVE.value:
        if not group["incident_id"]:
            raise Conflict("nothing public to resolve", {"draft_id": "its opening was never published"})
        return FollowUp(str(group["incident_id"]), validate(UpdateIn, body))
    if body.get("playbook_id"):
        opening = {k: v for k, v in body.items() if k != "playbook_id"}
        return PlaybookOpening(str(body["playbook_id"]), validate(OpenIn, opening))
    if body.get("channels") is not None:  # a template may name a channel this deployment has not enabled
        body["channels"] = [c for c in body["channels"] if c in enabled]
    return NewIncident(validate(IncidentIn, body))


async def plan(
    conn: AsyncConnection, request: DraftPublication, enabled: Sequence[str]
) -> tuple[NewIncident | FollowUp | PlaybookOpening, Mark]:
    """What publishing ``request.draft_id`` posts, and the ``mark`` to run with the update's write."""
    draft, group = await load(conn, request.draft_id)
    if draft["state"] != DraftState.PENDING.value:
        raise Conflict(f"the draft is {draft['state']}", {"draft_id": f"already {draft['state']}"})
    if draft["kind"] == DraftKind.RESOLVE.value and group["incident_id"]:
        status = (await conn.execute(select(incidents.c.status).where(incidents.c.id == group["incident_id"]))).scalar()
        if status in CLOSED_STATUSES:
            raise Conflict("the incident is closed already", {"draft_id": "discard this resolve draft"})
    body = dict(draft["body"])
    body.update({k: v for k, v in (("title", request.title), ("message", request.message)) if v})
    if draft["kind"] == DraftKind.RESOLVE.value:
        body.pop("title", None)
    inner = _request(draft, group, body, enabled)

    async def mark(conn: AsyncConnection, posted: Posted, actor: str) -> None:
        now = utcnow()
        taken = await conn.execute(
            drafts.update()
            .where(drafts.c.id == draft["id"], drafts.c.state == DraftState.PENDING.value)
            .values(
                state=DraftState.PUBLISHED.value,
                update_id=posted.update_id,
                publish_at=None,
                decided_at=now,
                decided_by=actor,
                updated_at=now,
            )
        )
        if taken.rowcount != 1:
            raise Conflict("the draft was decided meanwhile", {"draft_id": "published or discarded by someone else"})
        where = alert_groups.c.id == group["id"]
        if draft["kind"] == DraftKind.RESOLVE.value:
            await conn.execute(alert_groups.update().where(where).values(closed_at=now))
            return
        await conn.execute(alert_groups.update().where(where).values(incident_id=posted.incident_id))
        current = (await conn.execute(select(alert_groups).where(where))).mappings().one()
        if all_resolved(dict(current)):  # it resolved before anyone published: propose the resolve now
            await add_resolve_draft(conn, str(group["id"]), resolve_body())

    return inner, mark
