"""Languages: gettext catalogs (Babel), the reader's language, and dates in it.

Every user-facing string is a gettext message: templates mark them with ``{% trans %}`` or
``_("…")`` (Jinja2's i18n extension, installed by ``broadcaster.render``), Python code with
``gettext``. The catalogs are ``locale/<language>/LC_MESSAGES/<domain>.po``, one domain per
area of the product (``broadcaster.i18n.domains``), compiled in memory on first use: adding a
language is adding its ``.po`` files (docs/languages.md).

The language a string is translated into is the *current* one (a context variable): the
web app sets it per request, the worker per recipient group, ``render_template`` from the
``Message`` it renders. English is the source language: its "translation" is the msgid.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

if TYPE_CHECKING:
    from broadcaster.config import Settings

LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE_LANGUAGE = "en"
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[A-Z]{2})?$")
_ACCEPT_ITEM = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$")

_current: ContextVar[str] = ContextVar("broadcaster_language", default=SOURCE_LANGUAGE)


def shipped_languages() -> tuple[str, ...]:
    """English and every language that has a catalog folder, sorted (English first)."""
    found = sorted(p.name for p in LOCALE_DIR.iterdir() if p.is_dir() and any((p / "LC_MESSAGES").glob("*.po")))
    return (SOURCE_LANGUAGE, *(code for code in found if code != SOURCE_LANGUAGE))


def _compiled(language: str, domain: str) -> Translations | None:
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if not po.is_file():
        return None
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=domain)


@lru_cache(maxsize=32)
def translations(language: str) -> NullTranslations:
    """Every domain's catalog of ``language`` merged into one (fuzzy entries left out): what
    Python code translates with, where no area is known."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    if language == SOURCE_LANGUAGE or not folder.is_dir():
        return NullTranslations()
    merged: Translations | None = None
    for po in sorted(folder.glob("*.po")):
        one = _compiled(language, po.stem)
        if one is not None:
            merged = one if merged is None else merged.merge(one)
    return merged or NullTranslations()


@lru_cache(maxsize=256)
def domain_translations(language: str, domain: str | None) -> NullTranslations:
    """``domain``'s own catalog of ``language``, falling back to every other domain's: the same
    English words may be said differently in two areas ("open" on the desk and in the console)."""
    merged = translations(language)
    own = None if domain is None or language == SOURCE_LANGUAGE else _compiled(language, domain)
    if own is None:
        return merged
    own.add_fallback(merged)
    return own


def current_language() -> str:
    return _current.get()


@contextlib.contextmanager
def using(language: str | None) -> Iterator[str]:
    """Translate into ``language`` inside the block (``None``: leave the current one)."""
    if language is None:
        yield _current.get()
        return
    token = _current.set(language)
    try:
        yield language
    finally:
        _current.reset(token)


class Translator:
    """``gettext`` and its kin, in the current language, from ``domain``'s catalog first
    (``domain_translations``; ``None``: every domain merged); ``%(name)s`` placeholders filled
    from the keyword arguments (the plural forms also get ``num``)."""

    def __init__(self, domain: str | None = None) -> None:
        self.domain = domain

    def _catalog(self) -> NullTranslations:
        return domain_translations(_current.get(), self.domain)

    def gettext(self, message: str, **variables: Any) -> str:
        text = str(self._catalog().ugettext(message))
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, n: int, **variables: Any) -> str:
        return str(self._catalog().ungettext(singular, plural, n)) % {"num": n, **variables}

    def pgettext(self, context: str, message: str, **variables: Any) -> str:
        text = str(self._catalog().upgettext(context, message))
        return text % variables if variables else text

    def npgettext(self, context: str, singular: str, plural: str, n: int, **variables: Any) -> str:
        return str(self._catalog().unpgettext(context, singular, plural, n)) % {"num": n, **variables}


_ANY_DOMAIN = Translator()
gettext = _ANY_DOMAIN.gettext
ngettext = _ANY_DOMAIN.ngettext
pgettext = _ANY_DOMAIN.pgettext
npgettext = _ANY_DOMAIN.npgettext


def N_(message: str) -> str:
    """Mark ``message`` for extraction; translate it later with ``gettext``."""
    return message


# --- which language ----------------------------------------------------------------------------


def written_in(settings: Settings, language: str | None) -> str:
    """What to write to a reader of ``language`` in: theirs if the page offers it, else the default."""
    return best_match([language], settings.languages) or settings.default_language


def broadcast_language(settings: Settings, channel: str) -> str:
    """What a broadcast channel (one account, one voice) posts in: its own language
    (``BROADCASTER_CHANNEL_LANGUAGES``) if set, else the page's default."""
    return written_in(settings, settings.channel_languages.get(channel))


def normalize(code: str | None) -> str | None:
    """``"fr-ca"`` → ``"fr-CA"``, ``"DE"`` → ``"de"``; None when it is no language code."""
    if not code:
        return None
    head, _, region = code.strip().replace("_", "-").partition("-")
    value = f"{head.lower()}-{region.upper()}" if region else head.lower()
    return value if LANGUAGE_CODE.match(value) else None


def accept_language(header: str | None) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first (q=0 left out)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")[:32]):
        match = _ACCEPT_ITEM.match(item)
        if not match:
            continue
        tag, quality = match.group(1), float(match.group(2)) if match.group(2) else 1.0
        if quality > 0 and tag != "*":
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def best_match(wanted: Sequence[str | None], offered: Sequence[str]) -> str | None:
    """The first of ``wanted`` that ``offered`` has, exactly or by its base language (``fr-CA`` → ``fr``)."""
    for tag in wanted:
        code = normalize(tag)
        if code is None:
            continue
        if code in offered:
            return code
        base = code.partition("-")[0]
        if base in offered:
            return base
    return None


def negotiate(
    offered: Sequence[str],
    default: str,
    *,
    asked: str | None = None,
    kept: str | None = None,
    header: str | None = None,
) -> str:
    """The reader's language: ``?lang=`` (``asked``), else the cookie (``kept``), else
    ``Accept-Language`` (``header``), else ``default``."""
    return best_match([asked, kept], offered) or best_match(accept_language(header), offered) or default


def language_name(code: str) -> str:
    """The language's name in itself: ``"fr"`` → ``"Français"``."""
    try:
        name = Locale.parse(code, sep="-").get_display_name(code.replace("-", "_")) or code
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:]


# --- dates in the reader's language ------------------------------------------------------------

DATETIME_PATTERN = N_("yyyy-MM-dd HH:mm zzz")  # translators: a Babel (CLDR) date pattern


def _zone(time_zone: str | None) -> Any:
    if not time_zone:
        return UTC
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def format_datetime(value: datetime | None, time_zone: str | None = None) -> str:
    """``value`` the way the current language writes a moment (a CLDR pattern its catalog picks)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    language = _current.get()
    try:
        locale = Locale.parse(language, sep="-")
    except (ValueError, UnknownLocaleError):
        locale = Locale.parse(SOURCE_LANGUAGE)
    zone = _zone(time_zone)
    text = babel_format_datetime(value, gettext(DATETIME_PATTERN), tzinfo=zone, locale=locale)
    # CLDR spells UTC as "GMT" in some patterns; an ops page says UTC.
    return text.replace("GMT", "UTC") if zone is UTC or getattr(zone, "key", "") in ("UTC", "Etc/UTC") else text


# --- an update in a language it was not written in ----------------------------------------------


def fallback_note(reader: str, written: str) -> str:
    """One line, in ``reader``'s language, saying the update below is in ``written``'s."""
    with using(reader):
        return gettext(
            "This update is not available in %(reader)s yet; here it is in %(written)s.",
            reader=language_name_in(reader, reader),
            written=language_name_in(written, reader),
        )


def language_name_in(code: str, language: str) -> str:
    """``code``'s name in ``language`` (``"en"`` in French: ``"anglais"``)."""
    try:
        return Locale.parse(code, sep="-").get_display_name(language.replace("-", "_")) or code
    except (ValueError, UnknownLocaleError):
        return code
