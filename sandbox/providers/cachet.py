"""A local Cachet: the reads an import makes, in Cachet 2.x's shapes (``/api/v1``) or 3.x's (``/api``).

2.x: ``GET /api/v1/ping``, ``/components``, ``/components/groups``, ``/incidents`` (each with
its ``updates``), ``/schedules`` and ``/subscribers`` (the one list that needs
``X-Cachet-Token``), paged with ``?page=&per_page=`` and answered ``{"meta": {"pagination":
...}, "data": [...]}``; times are ``YYYY-MM-DD HH:MM:SS`` in the app's time zone. 3.x:
``/api/ping``, ``/api/components``, ``/api/component-groups``, ``/api/incidents``,
``/api/schedules``, ``/api/subscribers`` as JSON:API resources (``attributes``,
``relationships`` and ``included`` on ``?include=``), statuses ``{human, value}``, times
``{human, string}``, paged with ``links.next``; ``Authorization: Bearer`` for subscribers.
The data is kept in 2.x's shapes (``groups``, ``components``, ``incidents``, ``schedules``,
``subscribers``); ``FakeCachet.sample(...)`` fills them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Json = dict[str, Any]
INCIDENT_WORDS = {0: "Scheduled", 1: "Investigating", 2: "Identified", 3: "Watching", 4: "Fixed"}
COMPONENT_WORDS = {1: "Operational", 2: "Performance Issues", 3: "Partial Outage", 4: "Major Outage"}
SCHEDULE_WORDS = {0: "Upcoming", 1: "In Progress", 2: "Complete"}


@dataclass
class FakeCachet:
    version: int = 2
    token: str = "cachet-api-token-0123456789"
    zone: str = "Europe/Berlin"
    groups: list[Json] = field(default_factory=list)
    components: list[Json] = field(default_factory=list)
    incidents: list[Json] = field(default_factory=list)
    schedules: list[Json] = field(default_factory=list)
    subscribers: list[Json] = field(default_factory=list)
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # path, query, authorized

    @property
    def app(self) -> Starlette:
        if self.version == 2:
            lists = {"components": "components", "components/groups": "groups", "incidents": "incidents"}
            lists |= {"schedules": "schedules", "subscribers": "subscribers"}
            routes = [Route(f"/api/v1/{path}", self._v2(name)) for path, name in lists.items()]
            return Starlette(routes=[Route("/api/v1/ping", self._ping), *routes])
        lists = {"components": "components", "component-groups": "groups", "incidents": "incidents"}
        lists |= {"schedules": "schedules", "subscribers": "subscribers"}
        routes = [Route(f"/api/{path}", self._v3(name)) for path, name in lists.items()]
        return Starlette(routes=[Route("/api/ping", self._ping), *routes])

    def _authorized(self, request: Request) -> bool:
        if self.version == 2:
            ok = request.headers.get("x-cachet-token") == self.token
        else:
            ok = request.headers.get("authorization") == f"Bearer {self.token}"
        self.requests.append((request.url.path, request.url.query, ok))
        return ok

    async def _ping(self, request: Request) -> Response:
        self._authorized(request)
        return JSONResponse({"data": "Pong!"})

    @staticmethod
    def _paging(request: Request) -> tuple[int, int]:
        per_page = min(100, max(1, int(request.query_params.get("per_page") or 20)))
        return max(1, int(request.query_params.get("page") or 1)), per_page

    def _v2(self, name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            if not self._authorized(request) and name == "subscribers":
                return JSONResponse({"errors": [{"status": 401, "title": "Unauthorized"}]}, status_code=401)
            page, per_page = self._paging(request)
            items: list[Json] = getattr(self, name)
            pages = max(1, -(-len(items) // per_page))
            shown = items[(page - 1) * per_page : page * per_page]
            link = f"{request.url.replace(query='')}?per_page={per_page}&page="
            pagination = {
                "total": len(items),
                "count": len(shown),
                "per_page": per_page,
                "current_page": page,
                "total_pages": pages,
                "links": {
                    "next_page": f"{link}{page + 1}" if page < pages else None,
                    "previous_page": f"{link}{page - 1}" if page > 1 else None,
                },
            }
            return JSONResponse({"meta": {"pagination": pagination}, "data": shown})

        return endpoint

    def _v3(self, name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            if not self._authorized(request) and name == "subscribers":
                return JSONResponse({"message": "Unauthenticated."}, status_code=401)
            page, per_page = self._paging(request)
            items: list[Json] = getattr(self, name)
            shown = items[(page - 1) * per_page : page * per_page]
            include = set(filter(None, request.query_params.get("include", "").split(",")))
            included: dict[tuple[str, str], Json] = {}
            data = [self._resource(name, item, include, included) for item in shown]
            base = str(request.url.replace(query=""))
            more = page * per_page < len(items)
            links = {"first": f"{base}?page=1", "next": f"{base}?page={page + 1}" if more else None}
            body: Json = {"data": data, "links": links, "meta": {"current_page": page, "per_page": per_page}}
            if included:
                body["included"] = list(included.values())
            return JSONResponse(body)

        return endpoint

    def _v3_time(self, value: str | None) -> Json:
        return {"human": "some time ago" if value else None, "string": value}

    def _resource(self, name: str, item: Json, include: set[str], included: dict[tuple[str, str], Json]) -> Json:
        """A 2.x object as the 3.x JSON:API resource for it."""
        times = {"created": self._v3_time(item.get("created_at")), "updated": self._v3_time(item.get("updated_at"))}
        attributes: Json = {"id": item["id"], **times}
        relations: dict[str, list[tuple[str, Json]]] = {}
        if name == "components":
            attributes |= {k: item.get(k) for k in ("name", "description", "link", "order", "status", "enabled")}
            attributes["meta"] = None
        elif name == "groups":
            attributes |= {k: item.get(k) for k in ("name", "order", "collapsed", "visible")}
            members = [c for c in self.components if c.get("group_id") == item["id"]]
            relations["components"] = [("components", self._resource("components", c, set(), {})) for c in members]
        elif name == "incidents":
            status = item["updates"][0]["status"] if item["updates"] else item["status"]  # newest first
            attributes |= {k: item.get(k) for k in ("name", "message", "component_id", "stickied", "notifications")}
            attributes |= {"guid": f"guid-{item['id']}", "visible": 1 if item.get("visible") else 2}
            attributes |= {"status": {"human": INCIDENT_WORDS[status], "value": status}}
            attributes["occurred"] = self._v3_time(item.get("occurred_at"))
            relations["updates"] = [("updates", self._update3(u)) for u in item["updates"]]
        elif name == "schedules":
            attributes |= {"name": item["name"], "message": item["message"]}
            attributes["status"] = {"human": SCHEDULE_WORDS[item["status"]], "value": item["status"]}
            attributes |= {"scheduled": self._v3_time(item["scheduled_at"]), "published": self._v3_time(None)}
            attributes["completed"] = self._v3_time(item.get("completed_at"))
            ids = [c["component_id"] for c in item.get("components", [])]
            relations["components"] = [("components", self._by_id(ids)[i]) for i in ids]
        elif name == "subscribers":
            attributes |= {"email": item["email"], "global": bool(item["global"])}
            attributes |= {
                "verified": item["verified_at"] is not None,
                "verified_at": self._v3_time(item["verified_at"]),
            }
            ids = [s["component_id"] for s in item.get("subscriptions", [])]
            relations["components"] = [("components", self._by_id(ids)[i]) for i in ids]
        resource: Json = {"id": str(item["id"]), "type": name, "attributes": attributes}
        shown = {rel: refs for rel, refs in relations.items() if rel in include}
        if shown:
            resource["relationships"] = {
                rel: {"data": [{"type": kind, "id": str(r["id"])} for kind, r in refs]} for rel, refs in shown.items()
            }
            for refs in shown.values():
                for kind, related in refs:
                    included[(kind, str(related["id"]))] = related
        return resource

    def _by_id(self, ids: list[int]) -> dict[int, Json]:
        return {c["id"]: self._resource("components", c, set(), {}) for c in self.components if c["id"] in ids}

    def _update3(self, update: Json) -> Json:
        times = {"created": self._v3_time(update["created_at"]), "updated": self._v3_time(update["updated_at"])}
        attributes = {"id": update["id"], "updateable_id": update["incident_id"], "updateable_type": "incident"}
        attributes |= {"message": update["message"], **times}
        attributes["status"] = {"human": INCIDENT_WORDS[update["status"]], "value": update["status"]}
        return {"id": str(update["id"]), "type": "updates", "attributes": attributes}

    @classmethod
    def sample(
        cls, *, version: int = 2, seed: int = 22, now: datetime | None = None, subscribers: int = 60
    ) -> FakeCachet:
        """Two groups, seven components (one of each status), twelve incidents with their updates (one
        still open, one a 2.3-style scheduled incident), two schedules, and subscribers: most verified,
        some for every component (``global``), some for a few."""
        fake = cls(version=version)
        _Sampler(fake, random.Random(seed), now or datetime.now(UTC)).fill(subscribers)
        return fake


class _Sampler:
    def __init__(self, fake: FakeCachet, rng: random.Random, now: datetime) -> None:
        self.fake, self.rng, self.now = fake, rng, now
        self.zone = ZoneInfo(fake.zone)

    def time(self, at: datetime) -> str:
        """Cachet's ``toDateTimeString()``: local to the app, without a zone."""
        return at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def fill(self, subscriber_count: int) -> None:
        fake, rng, created = self.fake, self.rng, self.time(self.now - timedelta(days=300))
        stamp = {"created_at": created, "updated_at": created}
        for n, name in enumerate(("Services", "Infrastructure"), start=1):
            fake.groups.append({"id": n, "name": name, "order": n, "collapsed": 0, "visible": 1, **stamp})
        names = ("Website", "API", "Mobile app", "Database", "Storage", "Network", "Status emails")
        for n, name in enumerate(names, start=1):
            group = 1 if n <= 3 else 2 if n <= 5 else None
            status = {2: 2, 4: 3, 6: 4}.get(n, 1)  # performance issues, partial and major outage among them
            fake.components.append(
                {
                    "id": n,
                    "name": name,
                    "description": f"The {name.lower()}",
                    "link": "",
                    "status": status,
                    "status_name": COMPONENT_WORDS[status],
                    "order": n,
                    "group_id": group,
                    "enabled": True,
                    "meta": None,
                    "tags": [],
                    "deleted_at": None,
                    **stamp,
                }
            )
        for n in range(1, 13):
            fake.incidents.append(self._incident(n, open_=n == 12, scheduled=n == 6))
        fake.incidents.reverse()  # newest first, as Cachet sorts
        for n in (1, 2):
            window = self.now - timedelta(days=10 * n)
            fake.schedules.append(
                {
                    "id": n,
                    "name": f"Storage maintenance {n}",
                    "message": "Moving storage to new disks.",
                    "status": 2,
                    "human_status": SCHEDULE_WORDS[2],
                    "scheduled_at": self.time(window),
                    "completed_at": self.time(window + timedelta(hours=1)),
                    "created_at": self.time(window - timedelta(days=2)),
                    "updated_at": self.time(window + timedelta(hours=1)),
                    "deleted_at": None,
                    "components": [{"id": n, "schedule_id": n, "component_id": 5, "component_status": 2}],
                }
            )
        for n in range(1, subscriber_count + 1):
            fake.subscribers.append(self._subscriber(n, rng))

    def _incident(self, n: int, *, open_: bool, scheduled: bool) -> Json:
        start = self.now - (timedelta(hours=3) if open_ else timedelta(days=70 - n * 5, hours=n))
        updates: list[Json] = []
        at = start
        steps = [2, 3] if open_ else [2, 3, 4][: 1 + n % 3] + ([] if n % 3 == 2 else [4])
        for k, status in enumerate([] if scheduled else steps):
            at += timedelta(minutes=20 + 7 * k)
            updates.append(
                {
                    "id": n * 10 + k,
                    "incident_id": n,
                    "status": status,
                    "message": f"Incident {n}: {INCIDENT_WORDS[status].lower()}.",
                    "user_id": 1,
                    "created_at": self.time(at),
                    "updated_at": self.time(at),
                    "human_status": INCIDENT_WORDS[status],
                    "permalink": f"https://status.example.com/incidents/{n}#update-{n * 10 + k}",
                }
            )
        status = 0 if scheduled else int(updates[-1]["status"])
        return {
            "id": n,
            "user_id": 1,
            "component_id": 1 + n % 7,
            "name": f"Incident {n} on {self.fake.components[n % 7]['name']}",
            "status": status,
            "visible": 1,
            "stickied": False,
            "notifications": True,
            "message": f"We are looking into incident {n}.",
            "occurred_at": self.time(start),
            "scheduled_at": self.time(start + timedelta(days=1)) if scheduled else None,
            "created_at": self.time(start),
            "updated_at": self.time(at),
            "deleted_at": None,
            "is_resolved": status == 4,
            "meta": [],
            "updates": updates[::-1],
            "human_status": INCIDENT_WORDS[status],
            "latest_update_id": updates[-1]["id"] if updates else None,
            "latest_status": status,
            "permalink": f"https://status.example.com/incidents/{n}",
        }

    def _subscriber(self, n: int, rng: random.Random) -> Json:
        verified = n % 6 != 0
        chosen = rng.sample(range(1, 8), rng.randint(1, 3)) if n % 3 == 0 else []
        joined = self.time(self.now - timedelta(days=100 + n))
        return {
            "id": n,
            "email": f"cachet-reader{n}@example.net",
            "verify_code": f"code{n:040d}",
            "verified_at": joined if verified else None,
            "global": not chosen,
            "created_at": joined,
            "updated_at": joined,
            "subscriptions": [{"id": n * 10 + c, "subscriber_id": n, "component_id": c} for c in sorted(chosen)],
        }
