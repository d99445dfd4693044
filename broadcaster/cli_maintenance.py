"""``broadcaster maintenance schedule``: schedule a maintenance window from the terminal.

    broadcaster maintenance schedule --title "Database upgrade" \\
        --from 2030-01-05T02:00Z --until 2030-01-05T03:00Z --component ID [--component ID2=degraded_performance] \\
        [--rrule "FREQ=WEEKLY;BYDAY=SU"] [--remind-before MINUTES] [--manual] [--message TEXT]

It posts the same request as ``POST /api/v1/incidents`` with ``kind: maintenance`` through the
one posting service (actor ``cli:OSUSER``): subscribers hear of it now, the worker starts and
completes it at its edges (unless ``--manual``) and reminds them before it starts.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from broadcaster.commands import command
from broadcaster.config import Settings
from broadcaster.errors import InputError
from broadcaster.models import ComponentStatus


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["schedule"], help="schedule: announce a new maintenance window")
    parser.add_argument("--title", required=True)
    parser.add_argument("--from", dest="scheduled_for", required=True, metavar="ISO", help="e.g. 2030-01-05T02:00Z")
    parser.add_argument("--until", dest="scheduled_until", metavar="ISO", help="end (omit for an open end)")
    parser.add_argument(
        "--component",
        action="append",
        default=[],
        metavar="ID[=STATUS]",
        help="a component of the window, under_maintenance during it unless STATUS says otherwise (repeatable)",
    )
    parser.add_argument("--rrule", help="RFC 5545 rule: the next window is scheduled when this one completes")
    parser.add_argument("--message", help="the announcement (markdown; default: the window in words)")
    parser.add_argument("--remind-before", type=float, dest="remind_before_minutes", metavar="MINUTES")
    parser.add_argument("--manual", action="store_true", help="do not start and complete it automatically")
    parser.add_argument("--start-message", dest="auto_start_message", metavar="TEXT")
    parser.add_argument("--complete-message", dest="auto_complete_message", metavar="TEXT")
    parser.add_argument("--channel", action="append", dest="channels", metavar="NAME")


def body_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``POST /api/v1/incidents`` body the options stand for."""
    components: dict[str, str] = {}
    for item in args.component:
        key, sep, value = item.partition("=")
        components[key] = value if sep else ComponentStatus.UNDER_MAINTENANCE.value
    until = f" to {args.scheduled_until}" if args.scheduled_until else ""
    body: dict[str, Any] = {
        "kind": "maintenance",
        "status": "scheduled",
        "title": args.title,
        "message": args.message or f"Scheduled maintenance from {args.scheduled_for}{until}.",
        "scheduled_for": args.scheduled_for,
        "scheduled_until": args.scheduled_until,
        "components": components,
        "auto_transition": not args.manual,
    }
    for key in ("rrule", "remind_before_minutes", "auto_start_message", "auto_complete_message", "channels"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    return body


@command("maintenance", "schedule a maintenance window (it starts, completes and reminds by itself)", _args)
def maintenance(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.actors import Actor
    from broadcaster.post_requests import request_from_body
    from broadcaster.posting import post
    from broadcaster.runtime import Runtime

    request = request_from_body(body_from_args(args))

    async def run() -> tuple[dict[str, str], bool]:
        rt = Runtime.build(settings)
        try:
            result = await post(rt, request, actor=Actor.cli())
        finally:
            await rt.aclose()
        if result.ref is None:
            raise InputError("nothing was scheduled", {"title": "no maintenance recorded"})
        return result.ref, result.queued

    ref, queued = asyncio.run(run())
    print(f"scheduled maintenance {ref['incident_id']}" + ("" if queued else " (announcement queued for the relay)"))
    print(f"{settings.public_url}/incidents/{ref['incident_id']}")
    return 0
