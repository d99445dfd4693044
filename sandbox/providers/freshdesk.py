"""A local Freshdesk: the Solutions article endpoints broadcaster uses, as documented.

Checks basic auth ``{api_key}:X`` exactly, validates articles the way Freshdesk does
(``title``, ``description`` and ``status`` required on create; unknown fields refused;
status 1 or 2; tags an array of strings), stores articles and answers with Freshdesk's
JSON and error shapes. ``fail(...)`` injects 5xx or 429 answers. A pre-flight check's reads:
``GET /api/v2/agents/me`` (the API key's agent) and ``GET /api/v2/solutions/folders/{id}``
(an empty 404 for another id, as Freshdesk answers).

    freshdesk = FakeFreshdesk()
    async with serve_app(freshdesk.app) as base_url: ...
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.providers._helpdesk import HelpdeskFake

NOW = "2026-11-23T10:05:00Z"
FIELDS = {"title", "description", "status", "tags", "seo_data", "type", "agent_id", "folder_id"}


class FakeFreshdesk(HelpdeskFake):
    def __init__(self, api_key: str = "fd-secret-key", folder_ids: tuple[int, ...] = (73000012,)) -> None:
        super().__init__()
        self.api_key = api_key
        self.folder_ids = set(folder_ids)
        self.articles: dict[int, dict[str, Any]] = {}
        # Called with the article after each content write (its creation, an update of its title
        # or description); a tags-only PUT is no new revision, so it is not reported.
        self.on_accept: Callable[[dict[str, Any]], None] | None = None
        self._ids = itertools.count(73000100001)
        self.app = Starlette(
            routes=[
                Route("/api/v2/solutions/folders/{folder_id}/articles", self.create, methods=["POST"]),
                Route("/api/v2/solutions/articles/{article_id}", self.article, methods=["GET", "PUT", "DELETE"]),
                Route("/api/v2/agents/me", self.me, methods=["GET"]),
                Route("/api/v2/solutions/folders/{folder_id}", self.folder, methods=["GET"]),
            ]
        )

    async def create(self, request: Request) -> Response:
        payload, problem = await self._receive(request)
        if problem is not None:
            return problem
        folder_id = int(request.path_params["folder_id"])
        if folder_id not in self.folder_ids:
            return Response(status_code=404)
        errors = _validate(payload, creating=True)
        if errors:
            return _validation_failed(errors)
        article_id = next(self._ids)
        self.articles[article_id] = {
            "id": article_id,
            "type": payload.get("type", 1),
            "category_id": 73000000001,
            "folder_id": folder_id,
            "agent_id": 73000000500,
            "title": payload["title"],
            "description": payload["description"],
            "description_text": "",
            "status": payload["status"],
            "tags": payload.get("tags", []),
            "seo_data": payload.get("seo_data", {}),
            "hits": 0,
            "thumbs_up": 0,
            "thumbs_down": 0,
            "created_at": NOW,
            "updated_at": NOW,
        }
        if self.on_accept is not None:
            self.on_accept(self.articles[article_id])
        return JSONResponse(self.articles[article_id], 201)

    async def me(self, request: Request) -> Response:
        _, problem = await self._receive(request)
        if problem is not None:
            return problem
        return JSONResponse(
            {
                "id": 73000000500,
                "available": True,
                "occasional": False,
                "ticket_scope": 1,
                "type": "support_agent",
                "group_ids": [],
                "role_ids": [73000000010],
                "created_at": NOW,
                "updated_at": NOW,
                "contact": {
                    "active": True,
                    "email": "agent@example.com",
                    "name": "Status Agent",
                    "language": "en",
                    "time_zone": "UTC",
                    "created_at": NOW,
                    "updated_at": NOW,
                },
            }
        )

    async def folder(self, request: Request) -> Response:
        _, problem = await self._receive(request)
        if problem is not None:
            return problem
        raw_id = request.path_params["folder_id"]
        if not raw_id.isdigit() or int(raw_id) not in self.folder_ids:
            return Response(status_code=404)
        folder_id = int(raw_id)
        return JSONResponse(
            {
                "id": folder_id,
                "name": "Incidents",
                "description": "Live incident guidance for agents",
                "visibility": 3,  # agents only
                "category_id": 73000000001,
                "parent_folder_id": None,
                "articles_count": sum(1 for a in self.articles.values() if a["folder_id"] == folder_id),
                "created_at": NOW,
                "updated_at": NOW,
            }
        )

    async def article(self, request: Request) -> Response:
        payload, problem = await self._receive(request)
        if problem is not None:
            return problem
        article = self.articles.get(int(request.path_params["article_id"]))
        if article is None:
            return Response(status_code=404)
        if request.method == "DELETE":
            del self.articles[article["id"]]
            return Response(status_code=204)
        if request.method == "PUT":
            errors = _validate(payload, creating=False)
            if errors:
                return _validation_failed(errors)
            article.update(payload)
            article["updated_at"] = NOW
            if self.on_accept is not None and {"title", "description"} & payload.keys():
                self.on_accept(article)
        return JSONResponse(article)

    # -- the common reading's answers, in Freshdesk's shapes ------------------------------

    def basic_credentials(self) -> str:
        return f"{self.api_key}:X"

    def failure(self, status: int, headers: dict[str, str]) -> Response:
        return JSONResponse({"code": "internal_error", "message": "Try again"}, status, headers)

    def unauthorized(self) -> Response:
        return JSONResponse(
            {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}, 401
        )

    def bad_content_type(self) -> Response:
        return JSONResponse(
            {
                "code": "invalid_content_type",
                "message": "Content-Type header is set to . It should be set to application/json",
            },
            415,
        )

    def bad_json(self) -> Response:
        return JSONResponse(
            {
                "description": "Validation failed",
                "errors": [{"code": "invalid_json", "message": "Request body has invalid json format"}],
            },
            400,
        )


def _validate(payload: Any, *, creating: bool) -> list[dict[str, str]]:
    if not isinstance(payload, dict):
        return [{"field": "title", "message": "Mandatory attribute missing", "code": "missing_field"}]
    errors = [
        {"field": name, "message": "Unexpected/invalid field in request", "code": "invalid_field"}
        for name in payload
        if name not in FIELDS
    ]
    if creating:
        errors += [
            {"field": name, "message": "Mandatory attribute missing", "code": "missing_field"}
            for name in ("title", "description", "status")
            if name not in payload
        ]
    if "title" in payload and (not isinstance(payload["title"], str) or not payload["title"].strip()):
        errors.append({"field": "title", "message": "It should not be blank", "code": "invalid_value"})
    if "status" in payload and payload["status"] not in (1, 2):
        errors.append(
            {"field": "status", "message": "It should be one of these values: '1,2'", "code": "invalid_value"}
        )
    tags = payload.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        errors.append({"field": "tags", "message": "It should be a/an Array", "code": "datatype_mismatch"})
    return errors


def _validation_failed(errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"description": "Validation failed", "errors": errors}, 400)
