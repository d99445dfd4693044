"""What the agent desk shows: active and recent incidents as ``Message``s, and the search over them.

Every incident is shown through its latest update's ``Message`` (the same object every
channel renders), so the desk's public text is the status page's text, and its agent
material is what Zendesk and Freshdesk show. Each update comes in every language it was
written in (``Translation``), so an agent reads what each language's subscribers read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import incidents, updates, utcnow
from broadcaster.domain.incidents import list_updates, load_message
from broadcaster.i18n import SOURCE_LANGUAGE, language_name
from broadcaster.message import ApprovedAnswer, Message
from broadcaster.models import CLOSED_STATUSES
from broadcaster.render import agent_notes, html_to_text, localized, markdown_to_html, markdown_to_text

MAX_ACTIVE = 50
RECENT_RESOLVED = timedelta(hours=24)
MAX_RECENT = 10
SEARCH_WINDOW = timedelta(days=30)
MAX_SEARCH_INCIDENTS = 200
MAX_QUERY_CHARS = 200
MAX_TERMS = 12

# Words too common to say anything about what a caller asks.
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "there",
        "they",
        "this",
        "to",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    }
)
_WORD = re.compile(r"[^\W_]+")
_SUFFIXES = ("ing", "ed", "es", "s")


@dataclass(frozen=True)
class Translation:
    """An update as the readers of one more language read it (``title`` empty: not retitled)."""

    language: str
    name: str  # the language's name in itself: "Français"
    title: str
    body_html: str  # sanitized, as the status page renders it


def translations_of(message: Message) -> list[Translation]:
    """Every translation of ``message``'s update, by language code."""
    out = []
    for code in sorted(message.translations):
        version = localized(message, code)
        out.append(Translation(code, language_name(code), version.incident_title, version.body_html))
    return out


def row_translations(row: dict[str, Any]) -> list[Translation]:
    """The translations stored on a row of ``updates``, by language code."""
    stored = row.get("translations") or {}
    return [
        Translation(code, language_name(code), str(value.get("title") or ""), markdown_to_html(str(value["message"])))
        for code, value in sorted(stored.items())
    ]


@dataclass(frozen=True)
class Desk:
    """The desk at one moment: active incidents (newest first) and recently resolved ones."""

    active: list[Message]
    resolved: list[Message]
    built_at: datetime


async def _latest_update_ids(conn: AsyncConnection, incident_ids: Sequence[str]) -> dict[str, str]:
    if not incident_ids:
        return {}
    latest = (
        select(updates.c.incident_id, func.max(updates.c.number).label("number"))
        .where(updates.c.incident_id.in_(list(incident_ids)))
        .group_by(updates.c.incident_id)
        .subquery()
    )
    rows = await conn.execute(
        select(updates.c.incident_id, updates.c.id).join(
            latest, (latest.c.incident_id == updates.c.incident_id) & (latest.c.number == updates.c.number)
        )
    )
    return {str(r.incident_id): str(r.id) for r in rows}


async def _messages(
    conn: AsyncConnection, incident_ids: Sequence[str], page_name: str, public_url: str, language: str
) -> list[Message]:
    latest = await _latest_update_ids(conn, incident_ids)
    return [await load_message(conn, latest[i], page_name, public_url, language) for i in incident_ids if i in latest]


async def load_desk(
    conn: AsyncConnection, page_name: str, public_url: str, default_language: str = SOURCE_LANGUAGE
) -> Desk:
    """Every unresolved incident and those resolved in the last 24 hours, drills included; their
    text in the page's ``default_language``, with its translations."""
    now = utcnow()
    active_ids = (
        (
            await conn.execute(
                select(incidents.c.id)
                .where(incidents.c.status.not_in(CLOSED_STATUSES))
                .order_by(incidents.c.created_at.desc(), incidents.c.id)
                .limit(MAX_ACTIVE)
            )
        )
        .scalars()
        .all()
    )
    resolved_ids = (
        (
            await conn.execute(
                select(incidents.c.id)
                .where(incidents.c.status.in_(CLOSED_STATUSES), incidents.c.updated_at >= now - RECENT_RESOLVED)
                .order_by(incidents.c.updated_at.desc(), incidents.c.id)
                .limit(MAX_RECENT)
            )
        )
        .scalars()
        .all()
    )
    return Desk(
        active=await _messages(conn, active_ids, page_name, public_url, default_language),
        resolved=await _messages(conn, resolved_ids, page_name, public_url, default_language),
        built_at=now,
    )


# --- search --------------------------------------------------------------------------------------


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def search_terms(query: str) -> list[str]:
    """The words of ``query`` worth matching: lower-cased, stop words dropped, crudely stemmed.

    A query of stop words only keeps them, so "when" still finds "When will it be fixed?".
    """
    words = list(dict.fromkeys(_WORD.findall(query[:MAX_QUERY_CHARS].casefold())))
    meaningful = [w for w in words if w not in STOPWORDS]
    return [_stem(w) for w in (meaningful or words)][:MAX_TERMS]


def score(text: str, terms: Sequence[str]) -> int:
    """How many ``terms`` start a word of ``text`` (case-insensitive)."""
    folded = text.casefold()
    return sum(1 for term in terms if re.search(rf"\b{re.escape(term)}", folded))


@dataclass(frozen=True)
class AnswerHit:
    message: Message  # the incident's latest update, which carries the answer
    answer: ApprovedAnswer
    score: int


@dataclass(frozen=True)
class UpdateHit:
    message: Message  # the incident's latest update
    update: dict[str, Any]  # the matching public update (a row of ``updates``)
    body_html: str
    score: int
    translations: tuple[Translation, ...] = ()


@dataclass
class SearchResult:
    query: str
    terms: list[str]
    answers: list[AnswerHit] = field(default_factory=list)
    talking_points: list[Message] = field(default_factory=list)
    updates: list[UpdateHit] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.answers) + len(self.talking_points) + len(self.updates)


async def search(
    conn: AsyncConnection, query: str, page_name: str, public_url: str, default_language: str = SOURCE_LANGUAGE
) -> SearchResult:
    """Current and recent (30 days) incidents' approved answers, talking points and public updates.

    Answers are those of each incident's latest update (the guidance in force); a match in
    the question counts three times a match in the answer. Public updates are searched
    across the incident's whole history, in every language they were written in.
    """
    result = SearchResult(query=query[:MAX_QUERY_CHARS], terms=search_terms(query))
    if not result.terms:
        return result
    since = utcnow() - SEARCH_WINDOW
    incident_ids = (
        (
            await conn.execute(
                select(incidents.c.id)
                .where(or_(incidents.c.status.not_in(CLOSED_STATUSES), incidents.c.updated_at >= since))
                .order_by(incidents.c.updated_at.desc(), incidents.c.id)
                .limit(MAX_SEARCH_INCIDENTS)
            )
        )
        .scalars()
        .all()
    )
    history = await list_updates(conn, incident_ids)
    order = {incident_id: rank for rank, incident_id in enumerate(incident_ids)}
    for incident_id in incident_ids:
        rows = history.get(incident_id) or []
        if not rows:
            continue
        hits = _match_incident(rows, result.terms)
        if not any(hits):
            continue
        message = await load_message(conn, rows[0]["id"], page_name, public_url, default_language)
        answers, talking, matched_updates = hits
        result.answers += [AnswerHit(message, message.agent.approved_answers[i], s) for i, s in answers]
        if talking:
            result.talking_points.append(message)
        result.updates += [
            UpdateHit(message, row, body_html, s, tuple(row_translations(row))) for row, body_html, s in matched_updates
        ]

    def active_first(message: Message) -> tuple[bool, int]:
        return message.is_closing, order[message.incident_id]

    result.answers.sort(key=lambda hit: (-hit.score, *active_first(hit.message)))
    result.talking_points.sort(key=active_first)
    result.updates.sort(key=lambda hit: (-hit.score, *active_first(hit.message), -hit.update["number"]))
    return result


def _match_incident(
    rows: list[dict[str, Any]], terms: Sequence[str]
) -> tuple[list[tuple[int, int]], bool, list[tuple[dict[str, Any], str, int]]]:
    """Matches in one incident: (answer index, score) pairs, talking points?, matching updates."""
    notes = agent_notes(rows[0].get("agent"))
    answers = []
    for index, item in enumerate(notes.approved_answers):
        points = 3 * score(item.question, terms) + score(markdown_to_text(item.answer), terms)
        if points:
            answers.append((index, points))
    talking = bool(notes.talking_points) and score(markdown_to_text(notes.talking_points), terms) > 0
    matched = []
    for row in rows:
        body_html = markdown_to_html(row["body"])
        # One text of every language, so a term counts once whichever language it is found in.
        translated = (markdown_to_text(str(v.get("message") or "")) for v in (row.get("translations") or {}).values())
        points = score("\n".join([html_to_text(body_html), *translated]), terms)
        if points:
            matched.append((row, body_html, points))
    return answers, talking, matched
