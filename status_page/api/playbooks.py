"""Playbooks over the admin REST API: list, open an incident from a level, escalate, the team's
acknowledgements and the drill report. Contacts never appear in any public resource.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster import posting
from broadcaster.crisis import contacts, drills, playbooks
from broadcaster.errors import InputError
from broadcaster.models import Role
from broadcaster.post_requests import PlaybookOpening
from broadcaster.render import iso
from broadcaster.schemas import validate
from status_page.api.v1 import incident_json
from status_page.http import read_json, require_token, runtime, token_actor


def _level_json(level: dict[str, Any]) -> dict[str, Any]:
    return {
        "level": level["level"],
        "name": level["name"],
        "title": level["title"],
        "status": level["status"],
        "impact": level["impact"],
        "channels": level["channels"],
        "cadence_minutes": level["cadence_minutes"],
    }


def _team_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "contact_id": r["contact_id"],
            "name": r["name"],
            "role": r["role"],
            "level": r["level"],
            "added_at": iso(r["added_at"]),
            "notified_at": iso(r["notified_at"]),
            "notified_update_number": r["notified_number"],
            "acknowledged_at": iso(r["acknowledged_at"]),
        }
        for r in rows
    ]


async def list_playbooks(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        rows = await playbooks.list_playbooks(conn)
    return JSONResponse(
        [
            {
                "id": r["id"],
                "name": r["name"],
                "crisis_type": r["crisis_type"],
                "description": r["description"],
                "levels": [_level_json(lv) for lv in r["levels"]],
            }
            for r in rows
        ]
    )


async def open_playbook(request: Request) -> Response:
    """``POST /api/v1/playbooks/{id}/open`` {level, drill?, title?, message?, ...} → 201 incident + team."""
    token = await require_token(request, Role.COMMANDER)
    rt = runtime(request)
    data = validate(playbooks.OpenIn, await read_json(request))
    playbook_id = request.path_params["playbook_id"]
    posted = (await posting.post(rt, PlaybookOpening(playbook_id, data), actor=token_actor(token))).posted
    assert posted is not None  # an opening always records its first update
    async with rt.engine.connect() as conn:
        team = await contacts.incident_contact_rows(conn, posted.incident_id)
    body = await incident_json(rt, posted.incident_id)
    body.update(playbook_id=playbook_id, level=data.level, contacts=_team_json(team))
    return JSONResponse(body, status_code=201)


async def raise_level(request: Request) -> Response:
    """``POST /api/v1/incidents/{id}/level`` {level} → 200 {level, added: [contact ids], contacts}."""
    token = await require_token(request, Role.COMMANDER)
    rt = runtime(request)
    raw = await read_json(request)
    level = raw.get("level") if isinstance(raw, dict) else None
    if not isinstance(level, int) or isinstance(level, bool):
        raise InputError("invalid level", {"level": "must be a whole number"})
    incident_id = request.path_params["incident_id"]
    added = await playbooks.raise_level(rt, incident_id, level, token_actor(token))
    async with rt.engine.connect() as conn:
        team = await contacts.incident_contact_rows(conn, incident_id)
    return JSONResponse({"incident_id": incident_id, "level": level, "added": added, "contacts": _team_json(team)})


async def incident_team(request: Request) -> Response:
    await require_token(request, Role.COMMANDER)
    async with runtime(request).engine.connect() as conn:
        rows = await contacts.incident_contact_rows(conn, request.path_params["incident_id"])
    return JSONResponse(_team_json(rows))


async def drill_report(request: Request) -> Response:
    """The report's figures (seconds), computed from stored timestamps."""
    await require_token(request, Role.VIEWER)
    async with runtime(request).engine.connect() as conn:
        result = await drills.load_drill_report(conn, request.path_params["incident_id"])
    report = result.report
    return JSONResponse(
        {
            "incident_id": report.incident_id,
            "playbook": result.playbook,
            "levels": list(result.levels),
            "time_to_first_update_s": report.time_to_first_update_s,
            "updates": len(report.timeline),
            "promises_kept": report.promises_kept,
            "promises_broken": report.promises_broken,
            "intervals": [
                {
                    "from": i.from_number,
                    "to": i.to_number,
                    "elapsed_s": i.elapsed_s,
                    "promised_s": i.promised_s,
                    "late_by_s": i.late_by_s,
                    "kept": i.kept,
                }
                for i in report.intervals
            ],
            "acknowledgements": [
                {
                    "name": a.name,
                    "role": a.role,
                    "level": a.level,
                    "notified_at": iso(a.notified_at),
                    "acknowledged_at": iso(a.acknowledged_at),
                    "after_s": a.after_s,
                }
                for a in result.acknowledgements
            ],
            "reach": {
                r.channel: {"sent": r.sent, "failed": r.failed, "pending": r.pending, "total": r.total}
                for r in report.reach
            },
        }
    )


routes = [
    Route("/api/v1/playbooks", list_playbooks, methods=["GET"]),
    Route("/api/v1/playbooks/{playbook_id}/open", open_playbook, methods=["POST"]),
    Route("/api/v1/incidents/{incident_id}/level", raise_level, methods=["POST"]),
    Route("/api/v1/incidents/{incident_id}/contacts", incident_team, methods=["GET"]),
    Route("/api/v1/incidents/{incident_id}/report", drill_report, methods=["GET"]),
]
