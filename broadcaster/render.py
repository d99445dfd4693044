"""The one place words are made: an update becomes a ``Message`` (markdown rendered, sanitized,
flattened), and every template (``templates/<channel>/``) renders in one Jinja2 environment."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markdown as markdown_lib
import nh3

from broadcaster import i18n
from broadcaster.config import get_settings
from broadcaster.i18n import labels
from broadcaster.i18n.domains import template_domain
from broadcaster.message import AgentNotes, ApprovedAnswer, ComponentChange, Message

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "b",
    "i",
    "u",
    "s",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto", "tel"}

_BLOCK_END = re.compile(r"</(p|li|h[1-6]|blockquote|pre|tr|table|ul|ol)>|<br\s*/?>|<hr\s*/?>", re.I)
_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_SPACES = re.compile(r"[ \t]+")


def markdown_to_html(text: str) -> str:
    """Markdown to sanitized HTML: no script, no event handlers, no ``javascript:`` links."""
    raw = markdown_lib.markdown(text, extensions=["sane_lists", "tables"], output_format="html")
    return nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def html_to_text(fragment: str) -> str:
    """Sanitized HTML to plain text: blocks become paragraphs, entities are decoded."""
    with_breaks = _BLOCK_END.sub("\n\n", fragment)
    text = html.unescape(_TAG.sub("", with_breaks))
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def markdown_to_text(text: str) -> str:
    return html_to_text(markdown_to_html(text))


def agent_notes(data: Mapping[str, Any] | None) -> AgentNotes:
    """Agent material stored with an update (JSON) as ``AgentNotes``."""
    data = data or {}
    answers = tuple(
        ApprovedAnswer(question=str(item.get("question", "")), answer=str(item.get("answer", "")))
        for item in data.get("approved_answers") or ()
    )
    return AgentNotes(
        talking_points=str(data.get("talking_points") or ""),
        approved_answers=answers,
        do_not_say=str(data.get("do_not_say") or ""),
        escalation=str(data.get("escalation") or ""),
    )


def make_message(
    *,
    incident: Mapping[str, Any],
    update: Mapping[str, Any],
    components: list[ComponentChange],
    page_name: str,
    public_url: str,
    logo_url: str | None = None,
    accent_color: str | None = None,
    contact_notice: str | None = None,
    language: str = i18n.SOURCE_LANGUAGE,
    titles: Mapping[str, str] | None = None,
) -> Message:
    """Build the ``Message`` for ``update`` of ``incident`` (rows as mappings) in the page's default
    ``language``; the page's brand and "how to reach us" line as the caller read them. ``titles``:
    the incident's title per other language, as its updates so far set it."""
    body_html = markdown_to_html(update["body"])
    translations = {
        code: {"title": (titles or {}).get(code) or incident["name"], "message": str(value["message"])}
        for code, value in (update.get("translations") or {}).items()
    }
    return Message(
        update_id=update["id"],
        incident_id=incident["id"],
        incident_title=incident["name"],
        kind=incident["kind"],
        status=update["status"],
        impact=incident["impact"],
        body_markdown=update["body"],
        body_html=body_html,
        body_text=html_to_text(body_html),
        created_at=update["created_at"],
        update_number=update["number"],
        public_url=f"{public_url}/incidents/{incident['id']}",
        page_name=page_name,
        page_url=public_url,
        components=tuple(components),
        next_update_at=update.get("next_update_at"),
        scheduled_for=incident.get("scheduled_for"),
        scheduled_until=incident.get("scheduled_until"),
        drill=bool(incident.get("drill")),
        agent=agent_notes(update.get("agent")),
        logo_url=logo_url,
        accent_color=accent_color,
        contact_notice=contact_notice,
        language=language,
        content_language=language,
        translations=translations,
        titles=dict(titles or {}),
    )


def localized(message: Message, language: str | None) -> Message:
    """``message`` for a reader of ``language``: its translation when it has one, else the default
    text with a one-line note in the reader's language (``None``: the default language)."""
    if language is None or language == message.content_language == message.language:
        return message
    translation = message.translations.get(language)
    if translation is None:
        return replace(
            message,
            incident_title=message.titles.get(language, message.incident_title),
            language=language,
            translation_note=i18n.fallback_note(language, message.content_language),
        )
    body_html = markdown_to_html(translation["message"])
    return replace(
        message,
        incident_title=translation["title"],
        body_markdown=translation["message"],
        body_html=body_html,
        body_text=html_to_text(body_html),
        language=language,
        content_language=language,
        translation_note="",
    )


def iso(value: datetime | None) -> str | None:
    """RFC 3339 with milliseconds and Z, the way Statuspage writes timestamps."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# --- templates: one environment over templates/, one folder per channel ------------------------


def _datetime(value: Any, fmt: str | None = None) -> str:
    """A moment in the current language and the page's time zone; an explicit strftime ``fmt``
    (numeric, the same in every language) is written in UTC."""
    if value is None:
        return ""
    if fmt is None:
        return i18n.format_datetime(value, get_settings().time_zone)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return str(value.strftime(fmt))


# The template's own catalog domain first (broadcaster.i18n.domains); Jinja fills the placeholders.


def _catalog(context: jinja2.runtime.Context) -> Any:
    return i18n.domain_translations(i18n.current_language(), template_domain(context.name))


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return str(_catalog(context).ugettext(message))


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return str(_catalog(context).ungettext(singular, plural, n))


@jinja2.pass_context
def _pgettext(context: jinja2.runtime.Context, where: str, message: str) -> str:
    return str(_catalog(context).upgettext(where, message))


@jinja2.pass_context
def _npgettext(context: jinja2.runtime.Context, where: str, singular: str, plural: str, n: int) -> str:
    return str(_catalog(context).unpgettext(where, singular, plural, n))


@lru_cache(maxsize=4)
def environment(templates_dir: Path | None = None, autoescape: bool = True) -> jinja2.Environment:
    """The environment for ``templates_dir`` (default: the configured one).

    ``autoescape`` is on for HTML; text templates (``*.txt``) are never escaped.
    """
    root = templates_dir or get_settings().templates_dir
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "xml", "htm")) if autoescape else False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext
    )
    env.filters["humanize"] = labels.label  # a status's words in the reader's language
    env.filters["impact"] = labels.impact_label
    env.filters["datetime"] = _datetime
    env.globals["current_language"] = i18n.current_language
    env.globals["language_name"] = i18n.language_name
    return env


def render_template(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` with ``context``, in ``language`` if given, else in the
    ``message``'s language if there is one, else in the current language."""
    language = context.get("language") or getattr(context.get("message"), "language", None)
    with i18n.using(language):
        return environment().get_template(name).render(**context)
