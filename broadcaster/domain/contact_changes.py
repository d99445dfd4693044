"""The contact channels changed: what that change posts, if anything.

``PUT /api/v1/page/contact-channels`` and the console post a ``ContactNotice`` through the one
posting service, which calls ``plan`` inside its transaction: the list is replaced there and,
with ``notify``, the change goes out as an update. It is posted on the newest open incident
(at its current status); with none open it opens one of its own ("How to reach us has
changed"), which the all-``open`` change later resolves. Without ``notify`` the change is
quiet: the page, the desk, the JSON and the next emails show it, nobody is messaged for it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.domain import incidents as incident_store
from broadcaster.domain.contact_channels import ContactChannel, load_channels, notice_line, replace_channels
from broadcaster.models import OPEN_INCIDENT_STATUSES, Impact, IncidentKind
from broadcaster.post_requests import ContactNotice, FollowUp, NewIncident
from broadcaster.schemas import IncidentIn, UpdateIn

NOTICE_META = "contact_notice"  # incidents.meta key of an incident a contact notice opened
NOTICE_TITLE = "How to reach us has changed"
ALL_OPEN = "All our contact channels are open again."


async def _open_incident(conn: AsyncConnection) -> dict[str, Any] | None:
    rows = await incident_store.list_incidents(
        conn, kind=IncidentKind.INCIDENT.value, statuses=[s.value for s in OPEN_INCIDENT_STATUSES], limit=1
    )
    return rows[0] if rows else None


async def plan(
    conn: AsyncConnection, notice: ContactNotice
) -> tuple[list[ContactChannel], list[ContactChannel], NewIncident | FollowUp | None]:
    """(the channels before, after, the update to post or None): the list is replaced here."""
    before = await load_channels(conn)
    after = await replace_channels(conn, notice.data.channels)
    if not notice.data.notify:
        return before, after, None
    line = notice_line(after)
    text = notice.data.message or line or ALL_OPEN
    incident = await _open_incident(conn)
    if incident is not None:
        ours = bool((incident.get("meta") or {}).get(NOTICE_META))
        status = "resolved" if ours and line is None else incident["status"]
        return before, after, FollowUp(incident["id"], UpdateIn(status=status, message=text))
    if line is None:
        return before, after, None  # nothing open, nothing closed: nobody needs telling
    opening = IncidentIn(title=NOTICE_TITLE, status="identified", impact=Impact.NONE, message=text)
    return before, after, NewIncident(opening, meta={NOTICE_META: True})
