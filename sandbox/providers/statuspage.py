"""A local Atlassian Statuspage: the REST API v1 reads an import makes, with Statuspage's shapes.

``GET /v1/pages/{page_id}``, ``/components``, ``/incidents`` and ``/subscribers``, each
checking ``Authorization: OAuth KEY`` (401 otherwise) and the page id (404). Lists page as
Statuspage documents them: components and incidents from ``page=1`` with ``per_page`` (or
``limit``, at most 100), subscribers from ``page=0`` with ``limit`` (or ``per_page``);
incidents newest first, each update list newest first. ``throttle(n)`` answers the next
``n`` requests 429 with ``Retry-After: 0``. ``FakeStatuspage.sample(...)`` builds a page
with groups, components, incidents, maintenances and subscribers.

    statuspage = FakeStatuspage.sample(subscribers=500)
    async with serve_app(statuspage.app) as base_url: ...
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_PER_PAGE = 100
SEVERITIES = ("degraded_performance", "partial_outage", "major_outage")
COMPONENT_NAMES = ("API", "Dashboard", "Database", "CDN", "DNS", "Email delivery", "Webhooks", "Search", "Billing")
GROUP_NAMES = ("Platform", "Edge", "Data", "Apps")

Json = dict[str, Any]


def stamp(at: datetime) -> str:
    """Statuspage's time format: ISO 8601 with milliseconds and an offset."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass
class FakeStatuspage:
    page_id: str = "sp4g3x1mp0rt"
    api_key: str = "sp-api-key-0123456789"
    page: Json = field(default_factory=dict)
    components: list[Json] = field(default_factory=list)
    incidents: list[Json] = field(default_factory=list)  # newest first
    subscribers: list[Json] = field(default_factory=list)
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # path, query, authorized
    _throttled: int = 0

    def throttle(self, times: int) -> None:
        self._throttled += times

    @property
    def app(self) -> Starlette:
        base = "/v1/pages/{page_id}"
        return Starlette(
            routes=[
                Route(base, self._page),
                Route(base + "/components", self._list("components")),
                Route(base + "/incidents", self._list("incidents")),
                Route(base + "/subscribers", self._list("subscribers", first=0)),
            ]
        )

    def _refused(self, request: Request) -> Response | None:
        authorized = request.headers.get("authorization") == f"OAuth {self.api_key}"
        self.requests.append((request.url.path, request.url.query, authorized))
        if self._throttled:
            self._throttled -= 1
            return JSONResponse({"error": "Rate limit exceeded"}, status_code=429, headers={"Retry-After": "0"})
        if not authorized:
            return JSONResponse({"error": "Could not authenticate"}, status_code=401)
        if request.path_params["page_id"] != self.page_id:
            return JSONResponse({"error": "Page not found"}, status_code=404)
        return None

    async def _page(self, request: Request) -> Response:
        return self._refused(request) or JSONResponse(self.page)

    def _list(self, name: str, first: int = 1) -> Any:
        async def endpoint(request: Request) -> Response:
            refused = self._refused(request)
            if refused:
                return refused
            query = request.query_params
            try:
                size = min(MAX_PER_PAGE, max(1, int(query.get("per_page") or query.get("limit") or MAX_PER_PAGE)))
                page = int(query.get("page") or first)
            except ValueError:
                return JSONResponse({"error": "page and per_page must be integers"}, status_code=400)
            start = (page - first) * size
            items: list[Json] = getattr(self, name)
            return JSONResponse(items[start : start + size] if start >= 0 else [])

        return endpoint

    @classmethod
    def sample(
        cls,
        *,
        seed: int = 22,
        now: datetime | None = None,
        groups: int = 2,
        components: int = 7,
        incidents: int = 30,
        maintenances: int = 2,
        subscribers: int = 500,
        webhook_url: str = "https://hooks.example.com/status",
    ) -> FakeStatuspage:
        """A page like a real one: ``incidents`` of which ``maintenances`` are maintenances (3-6 updates
        each, the newest incident still open), and subscribers by email (60%), SMS (25%) and webhook,
        30% of them following some components."""
        fake = cls()
        _Sampler(fake, random.Random(seed), now or datetime.now(UTC)).fill(
            groups, components, incidents, maintenances, subscribers, webhook_url
        )
        return fake


class _Sampler:
    def __init__(self, fake: FakeStatuspage, rng: random.Random, now: datetime) -> None:
        self.fake, self.rng, self.now = fake, rng, now

    def new_id(self) -> str:
        return "".join(self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(12))

    def fill(self, groups: int, components: int, incidents: int, maintenances: int, subscribers: int, url: str) -> None:
        fake = self.fake
        created = self.now - timedelta(days=400)
        fake.page = {"id": fake.page_id, "name": "Example Cloud Status", "time_zone": "Etc/UTC", "url": ""}
        fake.page.update(created_at=stamp(created), updated_at=stamp(self.now), subdomain="examplecloud")
        group_rows = [self._component(GROUP_NAMES[g], None, g + 1, created, is_group=True) for g in range(groups)]
        parts = []
        for n in range(components):
            bucket = n % (groups + 1)
            group = group_rows[bucket] if bucket < groups else None
            part = self._component(COMPONENT_NAMES[n % len(COMPONENT_NAMES)], group, n + 1, created)
            if group is not None:
                group["components"].append(part["id"])
            parts.append(part)
        fake.components = [*group_rows, *parts]
        rows = []
        for k in range(incidents):
            if k >= incidents - maintenances:
                rows.append(self._maintenance(parts, k))
            else:
                rows.append(self._incident(parts, k, still_open=k == 0))
        fake.incidents = sorted(rows, key=lambda i: i["created_at"], reverse=True)
        fake.subscribers = [self._subscriber(n, parts, url) for n in range(subscribers)]

    def _component(
        self, name: str, parent: Json | None, position: int, at: datetime, *, is_group: bool = False
    ) -> Json:
        row: Json = {
            "id": self.new_id(),
            "page_id": self.fake.page_id,
            "group_id": parent["id"] if parent else None,
            "created_at": stamp(at),
            "updated_at": stamp(at),
            "group": is_group,
            "name": name,
            "description": None if is_group else f"{name} for every region",
            "position": position,
            "status": "operational",
            "showcase": not is_group,
            "only_show_if_degraded": False,
            "automation_email": f"component+{position}@notifications.statuspage.io",
            "start_date": at.date().isoformat(),
        }
        if is_group:
            row["components"] = []
        return row

    def _update(self, incident: Json, status: str, body: str, at: datetime, changes: list[Json]) -> Json:
        return {
            "id": self.new_id(),
            "incident_id": incident["id"],
            "affected_components": changes or None,
            "body": body,
            "created_at": stamp(at),
            "custom_tweet": None,
            "deliver_notifications": True,
            "display_at": stamp(at),
            "status": status,
            "tweet_id": None,
            "twitter_updated_at": None,
            "updated_at": stamp(at),
            "wants_twitter_update": False,
        }

    def _shell(self, name: str, status: str, impact: str, affected: list[Json], start: datetime) -> Json:
        return {
            "id": self.new_id(),
            "components": affected,
            "created_at": stamp(start),
            "impact": impact,
            "impact_override": None,
            "incident_updates": [],
            "metadata": {},
            "monitoring_at": None,
            "name": name,
            "page_id": self.fake.page_id,
            "postmortem_body": None,
            "resolved_at": None,
            "scheduled_for": None,
            "scheduled_until": None,
            "shortlink": f"https://stspg.io/{self.new_id()[:7]}",
            "started_at": stamp(start),
            "status": status,
            "updated_at": stamp(start),
        }

    @staticmethod
    def _change(component: Json, old: str, new: str) -> Json:
        return {"code": component["id"], "name": component["name"], "old_status": old, "new_status": new}

    def _incident(self, parts: list[Json], k: int, *, still_open: bool) -> Json:
        rng = self.rng
        affected = rng.sample(parts, rng.randint(1, 2))
        severity = rng.choice(SEVERITIES)
        start = self.now - (timedelta(hours=5) if still_open else timedelta(days=3 + k * 2.7, hours=rng.randint(0, 20)))
        count = rng.randint(3, 6)
        steps = ["investigating", *["identified"] * (count - 3), "monitoring", "resolved"]
        if still_open:
            steps = steps[:-1]
        impact = {"degraded_performance": "minor", "partial_outage": "major", "major_outage": "critical"}[severity]
        names = " and ".join(c["name"] for c in affected)
        incident = self._shell(f"Elevated errors on {names} ({k + 1})", steps[-1], impact, affected, start)
        at, updates = start, []
        for number, status in enumerate(steps):
            changes = []
            if number == 0:
                changes = [self._change(c, "operational", severity) for c in affected]
            elif status == "resolved":
                changes = [self._change(c, severity, "operational") for c in affected]
            body = f"Update {number + 1} on {names}: we are {status.replace('_', ' ')}."
            updates.append(self._update(incident, status, body, at, changes))
            if status == "monitoring":
                incident["monitoring_at"] = stamp(at)
            at += timedelta(minutes=rng.randint(10, 55))  # an open incident's updates are all in the past
        last = parse(updates[-1]["created_at"])
        incident.update(incident_updates=updates[::-1], updated_at=stamp(last))
        if still_open:
            for c in affected:
                c.update(status=severity, updated_at=stamp(start))
        else:
            incident["resolved_at"] = stamp(last)
        incident["components"] = [dict(c) for c in affected]
        return incident

    def _maintenance(self, parts: list[Json], k: int) -> Json:
        affected = self.rng.sample(parts, 1)
        window = self.now - timedelta(days=5 + k, hours=3)
        announced = window - timedelta(days=3)
        incident = self._shell(f"Database upgrade ({k + 1})", "completed", "maintenance", affected, announced)
        name = affected[0]["name"]
        updates = [
            self._update(incident, "scheduled", f"{name} is upgraded in this window.", announced, []),
            self._update(
                incident,
                "in_progress",
                "The upgrade has started.",
                window,
                [self._change(affected[0], "operational", "under_maintenance")],
            ),
            self._update(incident, "verifying", "Checking the upgrade.", window + timedelta(minutes=50), []),
            self._update(
                incident,
                "completed",
                "The upgrade is done.",
                window + timedelta(minutes=70),
                [self._change(affected[0], "under_maintenance", "operational")],
            ),
        ]
        incident.update(
            incident_updates=updates[::-1],
            scheduled_for=stamp(window),
            scheduled_until=stamp(window + timedelta(hours=2)),
            resolved_at=stamp(window + timedelta(minutes=70)),
            updated_at=stamp(window + timedelta(minutes=70)),
            components=[dict(c) for c in affected],
        )
        return incident

    def _subscriber(self, n: int, parts: list[Json], webhook_url: str) -> Json:
        rng = self.rng
        mode = "email" if n % 20 < 12 else "sms" if n % 20 < 17 else "webhook"
        chosen = sorted(c["id"] for c in rng.sample(parts, rng.randint(1, 3))) if n % 10 < 3 else []
        row: Json = {
            "id": self.new_id(),
            "skip_confirmation_notification": False,
            "mode": mode,
            "email": f"reader{n}@example.org" if mode != "sms" else None,
            "endpoint": f"{webhook_url}?s={n}" if mode == "webhook" else None,
            "phone_number": f"415555{n:04d}" if mode == "sms" else None,
            "phone_country": "US" if mode == "sms" else None,
            "display_phone_number": f"+1 415-555-{n:04d}" if mode == "sms" else None,
            "obfuscated_channel_name": None,
            "workspace_name": None,
            "quarantined_at": None,
            "purge_at": None,
            "components": chosen,
            "page_access_user_id": None,
            "created_at": stamp(self.now - timedelta(days=90 + n, minutes=n)),
        }
        return row


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)
