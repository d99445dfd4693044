"""The maintenance calendar (``GET /maintenance.ics``): every upcoming and active window as an iCalendar VEVENT.

Built with the ``icalendar`` package from the page's ``Snapshot``, so it shows exactly the
maintenances the page and ``upcoming.json``/``active.json`` show. Each VEVENT's UID is the
maintenance's id at the page's host, the same across edits; its SEQUENCE is the
maintenance's ``sequence``, bumped by each edit of the window or the components, so
calendar clients replace the event rather than add one. Times are UTC; DTSTAMP is the
maintenance's last change, so the same state gives the same bytes in every process.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import icalendar

from broadcaster.domain.components import display_name
from broadcaster.views.public import IncidentView, Snapshot

CONTENT_TYPE = "text/calendar; charset=utf-8"


def _description(view: IncidentView, snapshot: Snapshot, url: str) -> str:
    by_id = snapshot.component_by_id
    groups = {c["id"]: c for c in snapshot.components if c["is_group"]}
    names = [display_name(by_id[c], groups) for c in view.component_ids if c in by_id]
    lines = [f"Affected components: {', '.join(names) if names else 'none listed'}"]
    if view.updates:
        lines += ["", view.updates[0].body_text]
    return "\n".join([*lines, "", url])


def event(view: IncidentView, snapshot: Snapshot) -> icalendar.Event:
    """One maintenance window as a VEVENT."""
    row, page_url = view.row, str(snapshot.page["url"]).rstrip("/")
    url = f"{page_url}/incidents/{view.id}"
    vevent = icalendar.Event()
    vevent.add("uid", f"{view.id}@{urlsplit(page_url).hostname or 'broadcaster'}")
    vevent.add("sequence", int(row.get("sequence") or 0))
    vevent.add("dtstamp", row["updated_at"])
    vevent.add("last-modified", row["updated_at"])
    vevent.add("dtstart", row["scheduled_for"])
    if row["scheduled_until"] is not None:
        vevent.add("dtend", row["scheduled_until"])
    vevent.add("summary", f"Maintenance: {row['name']}")
    vevent.add("description", _description(view, snapshot, url))
    vevent.add("url", url)
    vevent.add("status", "CONFIRMED")
    return vevent


def calendar(snapshot: Snapshot) -> bytes:
    """The whole feed: the active and upcoming windows, in start order."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//broadcaster//maintenance calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"{snapshot.page['name']} maintenance")
    windows = sorted(
        (m for m in (*snapshot.upcoming, *snapshot.active_maintenances) if m.row["scheduled_for"] is not None),
        key=lambda m: (m.row["scheduled_for"], m.id),
    )
    for view in windows:
        cal.add_component(event(view, snapshot))
    data: bytes = cal.to_ical()
    return data
