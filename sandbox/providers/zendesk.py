"""A local Zendesk Help Center: the article endpoints broadcaster uses, as documented.

Checks basic auth ``{email}/token:{api_token}`` exactly, validates articles the way Zendesk
does (``locale``, ``title``, ``permission_group_id`` and ``user_segment_id`` are required;
``user_segment_id`` may be null), stores articles with one translation per locale, and
answers with Zendesk's JSON and error shapes. ``fail(...)`` injects 5xx or 429 answers.
A pre-flight check's reads: ``GET /api/v2/users/me.json`` (the token's user, ``user_role``)
and ``GET /api/v2/help_center/sections/{id}.json`` (404 ``RecordNotFound`` for another id).

    zendesk = FakeZendesk()
    async with serve_app(zendesk.app) as base_url: ...
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.providers._helpdesk import HelpdeskFake

NOW = "2026-11-23T10:05:00Z"


@dataclass
class Article:
    id: int
    section_id: int
    source_locale: str
    permission_group_id: int
    user_segment_id: int | None
    label_names: list[str]
    translations: dict[str, dict[str, str]] = field(default_factory=dict)  # locale -> {title, body}


class FakeZendesk(HelpdeskFake):
    def __init__(
        self,
        email: str = "agent@example.com",
        api_token: str = "zd-secret-token",
        section_ids: tuple[int, ...] = (360001,),
        permission_group_ids: tuple[int, ...] = (1501,),
    ) -> None:
        super().__init__()
        self.email = email
        self.api_token = api_token
        self.section_ids = set(section_ids)
        self.permission_group_ids = set(permission_group_ids)
        self.articles: dict[int, Article] = {}
        self.base_url = "http://zendesk.invalid"  # for html_url; set when served
        self.user_role = "admin"  # of the token's user: "admin", "agent" or "end-user"
        # Called with the article's JSON after each content write (its creation, a translation
        # written); a labels-only PUT is no new revision, so it is not reported.
        self.on_accept: Callable[[dict[str, Any]], None] | None = None
        self._ids = itertools.count(4400000001)
        self.app = Starlette(
            routes=[
                Route("/api/v2/help_center/sections/{section_id}/articles.json", self.create, methods=["POST"]),
                Route(
                    "/api/v2/help_center/articles/{article_id}/translations/{locale}.json",
                    self.update_translation,
                    methods=["PUT"],
                ),
                Route("/api/v2/help_center/articles/{article_id}.json", self.article, methods=["GET", "PUT", "DELETE"]),
                Route("/api/v2/users/me.json", self.me, methods=["GET"]),
                Route("/api/v2/help_center/sections/{section_id}.json", self.section, methods=["GET"]),
            ]
        )

    # -- endpoints ---------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        payload, problem = await self._receive(request)
        if problem is not None:
            return problem
        section_id = int(request.path_params["section_id"])
        if section_id not in self.section_ids:
            return _not_found()
        article = payload.get("article") if isinstance(payload, dict) else None
        if not isinstance(article, dict):
            return _invalid("article", "Article: is required", "BlankValue")
        for name in ("title", "locale"):
            if not isinstance(article.get(name), str) or not article[name].strip():
                return _invalid(name, f"{name.capitalize()}: cannot be blank", "BlankValue")
        missing = []
        if "user_segment_id" not in article:
            missing.append(
                "You passed an invalid value for the user_segment_id attribute. You must provide "
                "user_segment_id. Set to 'null' to make it visible to everyone."
            )
        if article.get("permission_group_id") not in self.permission_group_ids:
            missing.append(
                "You passed an invalid value for the permission_group_id attribute. "
                "You must provide permission_group_id."
            )
        if missing:
            return JSONResponse({"title": "Invalid attribute", "message": ". ".join(missing)}, 400)
        labels = article.get("label_names", [])
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return _invalid("label_names", "Label names: must be an array of strings", "InvalidValue")
        stored = Article(
            id=next(self._ids),
            section_id=section_id,
            source_locale=article["locale"],
            permission_group_id=article["permission_group_id"],
            user_segment_id=article["user_segment_id"],
            label_names=labels,
            translations={article["locale"]: {"title": article["title"], "body": article.get("body", "")}},
        )
        self.articles[stored.id] = stored
        answer = self._article_json(stored, stored.source_locale)
        if self.on_accept is not None:
            self.on_accept(answer)
        return JSONResponse({"article": answer}, 201)

    async def me(self, request: Request) -> Response:
        _, problem = await self._receive(request)
        if problem is not None:
            return problem
        user = {
            "id": 9000000001,
            "url": f"{self.base_url}/api/v2/users/9000000001.json",
            "name": "Status Agent",
            "email": self.email,
            "role": self.user_role,
            "active": True,
            "locale": "en-US",
            "created_at": NOW,
            "updated_at": NOW,
        }
        return JSONResponse({"user": user})

    async def section(self, request: Request) -> Response:
        _, problem = await self._receive(request)
        if problem is not None:
            return problem
        raw_id = request.path_params["section_id"]
        if not raw_id.isdigit() or int(raw_id) not in self.section_ids:
            return _not_found()
        section_id = int(raw_id)
        section = {
            "id": section_id,
            "url": f"{self.base_url}/api/v2/help_center/en-us/sections/{section_id}.json",
            "html_url": f"{self.base_url}/hc/en-us/sections/{section_id}",
            "category_id": 360000000001,
            "position": 0,
            "sorting": "manual",
            "name": "Incidents",
            "description": "",
            "locale": "en-us",
            "source_locale": "en-us",
            "outdated": False,
            "parent_section_id": None,
            "theme_template": "section_page",
            "created_at": NOW,
            "updated_at": NOW,
        }
        return JSONResponse({"section": section})

    async def update_translation(self, request: Request) -> Response:
        payload, problem = await self._receive(request)
        if problem is not None:
            return problem
        article = self.articles.get(int(request.path_params["article_id"]))
        locale = request.path_params["locale"]
        if article is None or locale not in article.translations:
            return _not_found()
        translation = payload.get("translation") if isinstance(payload, dict) else None
        if not isinstance(translation, dict):
            return _invalid("translation", "Translation: is required", "BlankValue")
        if "title" in translation and not str(translation["title"] or "").strip():
            return _invalid("title", "Title: cannot be blank", "BlankValue")
        current = article.translations[locale]
        current.update({key: translation[key] for key in ("title", "body") if key in translation})
        if self.on_accept is not None:
            self.on_accept(self._article_json(article, locale))
        return JSONResponse(
            {
                "translation": {
                    "id": article.id + 1000,
                    "source_id": article.id,
                    "source_type": "Article",
                    "locale": locale,
                    "title": current["title"],
                    "body": current["body"],
                    "draft": False,
                    "outdated": False,
                    "html_url": self._html_url(article, locale),
                    "updated_at": NOW,
                }
            }
        )

    async def article(self, request: Request) -> Response:
        payload, problem = await self._receive(request)
        if problem is not None:
            return problem
        article = self.articles.get(int(request.path_params["article_id"]))
        if article is None:
            return _not_found()
        if request.method == "DELETE":  # Zendesk archives the article
            del self.articles[article.id]
            return Response(status_code=204)
        if request.method == "PUT":
            changes = payload.get("article") if isinstance(payload, dict) else None
            if not isinstance(changes, dict):
                return _invalid("article", "Article: is required", "BlankValue")
            if "label_names" in changes:
                labels = changes["label_names"]
                if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
                    return _invalid("label_names", "Label names: must be an array of strings", "InvalidValue")
                article.label_names = labels
        return JSONResponse({"article": self._article_json(article, article.source_locale)})

    # -- helpers -----------------------------------------------------------------------

    def basic_credentials(self) -> str:
        return f"{self.email}/token:{self.api_token}"

    def failure(self, status: int, headers: dict[str, str]) -> Response:
        if status == 429:
            return Response("Too Many Requests", 429, headers=headers)
        return JSONResponse({"error": "InternalError", "description": "Try again"}, status, headers)

    def unauthorized(self) -> Response:
        return JSONResponse({"error": "Couldn't authenticate you"}, 401)

    def bad_content_type(self) -> Response:
        return JSONResponse({"error": "InvalidContentType", "description": "Use JSON"}, 415)

    def bad_json(self) -> Response:
        return JSONResponse({"error": "Unprocessable Entity", "description": "Invalid JSON"}, 400)

    def _html_url(self, article: Article, locale: str) -> str:
        return f"{self.base_url}/hc/{locale}/articles/{article.id}"

    def _article_json(self, article: Article, locale: str) -> dict[str, Any]:
        translation = article.translations[locale]
        return {
            "id": article.id,
            "url": f"{self.base_url}/api/v2/help_center/{locale}/articles/{article.id}.json",
            "html_url": self._html_url(article, locale),
            "section_id": article.section_id,
            "locale": locale,
            "source_locale": article.source_locale,
            "title": translation["title"],
            "body": translation["body"],
            "label_names": article.label_names,
            "permission_group_id": article.permission_group_id,
            "user_segment_id": article.user_segment_id,
            "draft": False,
            "outdated": False,
            "created_at": NOW,
            "updated_at": NOW,
            "edited_at": NOW,
        }


def _not_found() -> JSONResponse:
    return JSONResponse({"error": "RecordNotFound", "description": "Not found"}, 404)


def _invalid(field_name: str, description: str, error: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field_name: [{"description": description, "error": error}]},
        },
        400,
    )
