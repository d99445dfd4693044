"""The reader's language for every request the web app answers.

``?lang=fr`` wins and is kept in a cookie; else the cookie; else ``Accept-Language``; else
``BROADCASTER_DEFAULT_LANGUAGE``, among the languages the page offers. ``LanguageMiddleware``
makes it the current language (``broadcaster.i18n``) for the rest of the request, so every
template and ``gettext`` call speaks it, and says it in ``Content-Language``.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcaster import i18n
from broadcaster.config import Settings

LANG_COOKIE = "broadcaster_lang"
LANG_PARAM = "lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return str(value.decode("latin-1"))
    return None


def asked_language(query_string: bytes, offered: tuple[str, ...]) -> str | None:
    """The offered language ``?lang=`` names, if it names one."""
    if b"lang=" not in query_string:
        return None
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=False):
        if key == LANG_PARAM:
            return i18n.best_match([value], offered)
    return None


def kept_language(cookie_header: str | None) -> str | None:
    if not cookie_header or LANG_COOKIE not in cookie_header:
        return None
    try:
        morsel = SimpleCookie(cookie_header).get(LANG_COOKIE)
    except Exception:  # a malformed cookie header is no language
        return None
    return morsel.value if morsel is not None else None


def reader_language(scope: Scope, settings: Settings) -> tuple[str, str | None]:
    """(the reader's language, the one ``?lang=`` asked for if it did)."""
    offered = settings.languages
    asked = asked_language(scope.get("query_string") or b"", offered)
    if asked is not None:
        return asked, asked
    language = i18n.negotiate(
        offered,
        settings.default_language,
        kept=kept_language(_header(scope, b"cookie")),
        header=_header(scope, b"accept-language"),
    )
    return language, None


def language_cookie(language: str, secure: bool) -> bytes:
    flags = "; Secure" if secure else ""
    return f"{LANG_COOKIE}={language}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; SameSite=Lax{flags}".encode("latin-1")


class LanguageMiddleware:
    """Sets the current language per request (``scope["state"]["language"]`` too)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.secure = settings.public_url.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        language, asked = reader_language(scope, self.settings)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["language"] = language
        content_language = (b"content-language", language.encode("ascii"))

        async def speaking(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                if not any(key == b"content-language" for key, _ in headers):
                    headers.append(content_language)
                if asked is not None:
                    headers.append((b"set-cookie", language_cookie(asked, self.secure)))
                message = {**message, "headers": headers}
            await send(message)

        with i18n.using(language):
            await self.app(scope, receive, speaking)
