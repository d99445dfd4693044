"""The hot public GETs answered straight from the page cache, before any middleware or router.

In a crisis everyone refreshes ``/`` and ``summary.json``. The app (``status_page.app``) asks
``FastPath`` first, over either server interface: ``ready`` is plain Python (no coroutine, no
per-request header lists: each kind of answer is built once per cached entry, see
``page_cache.reply_for``), so a cached answer costs a few dict lookups. The security headers
the middleware would add are part of those ready lists; the metrics middleware does not count
these answers. Anything ``ready`` cannot answer (a cold or stale cache, a reader who picked a
language with ``?lang=`` or the cookie) goes to ``answer``, which builds and sets the cookie, or
through the normal stack.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, AnyStr

from starlette.types import Scope, Send

from broadcaster import i18n
from broadcaster.config import Settings
from broadcaster.views.statuspage_v2 import ENDPOINTS
from status_page.api import v2 as api_v2
from status_page.languages import LANG_COOKIE, LANG_PARAM, language_cookie, reader_language
from status_page.public import pages
from status_page.public.page_cache import MAX_REMEMBERED_VALUES, Entry, Reply, page_cache, reply_for, send_entry
from status_page.security_headers import security_headers_for

log = logging.getLogger(__name__)

FRONT_PAGE = "/"
LANG_QUERY = f"{LANG_PARAM}="
_LANG_QUERY_BYTES = LANG_QUERY.encode()
_LANG_COOKIE_BYTES = LANG_COOKIE.encode()


def chose_language(query: AnyStr, cookie: AnyStr | None) -> bool:
    """Whether the reader picked a language (``?lang=`` or the cookie), bytes or text alike."""
    if isinstance(query, bytes):
        return _LANG_QUERY_BYTES in query or (cookie is not None and _LANG_COOKIE_BYTES in cookie)
    return LANG_QUERY in query or (cookie is not None and LANG_COOKIE in cookie)


class FastPath:
    """Answers GET/HEAD of ``/``, the v2 JSON and the feeds from the cache (see the module docstring)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app  # the Starlette app whose page cache this reads
        self.settings = settings
        self.secure = settings.public_url.startswith("https://")
        self.extra = tuple(security_headers_for(settings, "/"))
        self.cache = page_cache(app)
        self.page_keys = {language: pages.index_key(language) for language in settings.languages}
        feeds = {
            f"/history.{kind}": (pages.feed_key(kind), functools.partial(pages.feed_entry, kind=kind))
            for kind in ("atom", "rss")
        }
        api = {f"/api/v2/{p}": (api_v2.api_key(p), functools.partial(api_v2.api_entry, path=p)) for p in ENDPOINTS}
        self.one_language: dict[str, tuple[str, Callable[[Any], Awaitable[Entry]]]] = {**feeds, **api}
        self.paths = frozenset((FRONT_PAGE, *self.one_language))
        self.by_header: dict[Any, str] = {}  # Accept-Language value (bytes or str) -> language, oldest first

    def language_for(self, accept_language: AnyStr | None) -> str:
        """The language of a reader who did not pick one: what ``Accept-Language`` comes to."""
        language = self.by_header.get(accept_language)
        if language is None:
            header = accept_language.decode("latin-1") if isinstance(accept_language, bytes) else accept_language
            language = i18n.negotiate(self.settings.languages, self.settings.default_language, header=header)
            if len(self.by_header) >= MAX_REMEMBERED_VALUES:
                del self.by_header[next(iter(self.by_header))]
            self.by_header[accept_language] = language
        return language

    def ready(
        self,
        method: str,
        path: str,
        *,
        picked_language: bool,
        accept_language: AnyStr | None,
        if_none_match: bytes | None,
        accept_encoding: bytes | None,
    ) -> Reply | None:
        """The ready answer from the cache, or None when ``answer`` (or the stack) must handle it."""
        if method != "GET" and method != "HEAD":
            return None
        if path == FRONT_PAGE:
            if picked_language:
                return None
            entry = self.cache.current(self.page_keys[self.language_for(accept_language)])
        else:
            found = self.one_language.get(path)
            entry = self.cache.current(found[0]) if found is not None else None
        if entry is None:
            return None
        return reply_for(
            entry,
            head=method == "HEAD",
            if_none_match=if_none_match,
            accept_encoding=accept_encoding,
            extra=self.extra,
        )

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Answer an ASGI request if it is a hot public GET/HEAD (building what the cache lacks);
        False: not answered, the normal stack takes it."""
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return False
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            return False
        cookie = accept_language = inm = accept = None
        for name, value in scope["headers"]:
            if name == b"accept-language" and accept_language is None:
                accept_language = value
            elif name == b"cookie" and cookie is None:
                cookie = value
            elif name == b"if-none-match":
                inm = value
            elif name == b"accept-encoding":
                accept = value
        picked = chose_language(scope.get("query_string", b""), cookie)
        reply = self.ready(
            method,
            path,
            picked_language=picked,
            accept_language=accept_language,
            if_none_match=inm,
            accept_encoding=accept,
        )
        if reply is None:
            return await self._build_and_answer(scope, send, picked, accept_language)
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
        await send({"type": "http.response.body", "body": reply.body})
        return True

    async def _build_and_answer(self, scope: Scope, send: Send, picked: bool, accept_language: bytes | None) -> bool:
        path = scope["path"]
        extra = list(self.extra)
        try:
            if path == FRONT_PAGE:
                if picked:
                    language, asked = reader_language(scope, self.settings)
                    if asked is not None:
                        extra.append((b"set-cookie", language_cookie(asked, self.secure)))
                else:
                    language = self.language_for(accept_language)
                entry = await pages.index_entry(self.app, language)
            else:
                entry = await self.one_language[path][1](self.app)
        except Exception:
            log.debug("fast path missed %s", path, exc_info=True)
            return False
        await send_entry(scope, send, entry, extra)
        return True
