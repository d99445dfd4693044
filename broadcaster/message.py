"""The one object every channel renders: an update as the public will read it.

``render.build_message`` makes it from stored rows; every channel template receives the
same ``Message``, so no channel can say something the page does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from broadcaster.i18n import SOURCE_LANGUAGE, gettext
from broadcaster.i18n.labels import label


@dataclass(frozen=True, slots=True)
class ComponentChange:
    """An affected component and its state after this update (``old_status`` before it)."""

    id: str
    name: str  # "Group - Component" for a grouped component, as Statuspage names it
    new_status: str
    old_status: str | None = None

    @property
    def status_label(self) -> str:
        return label(self.new_status)


@dataclass(frozen=True, slots=True)
class ApprovedAnswer:
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class AgentNotes:
    """What the contact centre needs beside the public text; versioned with the update."""

    talking_points: str = ""
    approved_answers: tuple[ApprovedAnswer, ...] = ()
    do_not_say: str = ""
    escalation: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.talking_points or self.approved_answers or self.do_not_say or self.escalation)


@dataclass(frozen=True, slots=True)
class Message:
    """One update of one incident, rendered once, identical for every channel."""

    update_id: str
    incident_id: str
    incident_title: str
    kind: str  # "incident" | "maintenance"
    status: str  # the status this update set
    impact: str
    body_markdown: str
    body_html: str  # sanitized
    body_text: str
    created_at: datetime
    update_number: int  # 1 for the incident's first update
    public_url: str  # this incident's page
    page_name: str
    page_url: str
    components: tuple[ComponentChange, ...] = ()
    next_update_at: datetime | None = None
    scheduled_for: datetime | None = None
    scheduled_until: datetime | None = None
    drill: bool = False
    agent: AgentNotes = field(default_factory=AgentNotes)
    logo_url: str | None = None  # the page's logo (absolute URL), for channels that show one
    accent_color: str | None = None  # the page's accent (#rrggbb), contrast-checked against white
    contact_notice: str | None = None  # "How to reach us now: …", while some contact channel is not open
    language: str = SOURCE_LANGUAGE  # the reader's: the words around the update are in it
    content_language: str = SOURCE_LANGUAGE  # the one title and body are written in
    translation_note: str = ""  # when the two differ: one line in the reader's language saying so
    # every language the update exists in beyond the default: {"fr": {"title": …, "message": …}}
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # the incident's title per language, as its updates so far set it (an update without a
    # translation still carries the title an earlier one gave)
    titles: Mapping[str, str] = field(default_factory=dict)

    @property
    def status_label(self) -> str:
        """The status in the current language (``render_template`` makes it the message's)."""
        return label(self.status)

    @property
    def is_first(self) -> bool:
        return self.update_number == 1

    @property
    def is_closing(self) -> bool:
        return self.status in ("resolved", "postmortem", "completed")

    @property
    def subject(self) -> str:
        """``[Investigating] API errors``, with a DRILL mark on drills; never contains CR/LF."""
        prefix = f"[{drill_mark()}] " if self.drill else ""
        return one_line(f"{prefix}[{self.status_label}] {self.incident_title}")


def drill_mark() -> str:
    """The word that marks a drill everywhere it is shown (``DRILL``), in the current language."""
    # translators: the mark on an exercise's messages ("[DRILL] [Investigating] API errors"); short, upper case
    return gettext("DRILL")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WHITESPACE = re.compile(r"\s+")
ELLIPSIS = "…"


def one_line(text: str) -> str:
    """Fold every run of white space (CR and LF included) into one space."""
    return _WHITESPACE.sub(" ", text).strip()


def first_sentence(text: str) -> str:
    """The first sentence of a plain-text body (the whole first paragraph if it has no stop)."""
    flat = one_line(text)
    return _SENTENCE_END.split(flat, maxsplit=1)[0] if flat else ""


def cut_at_word(text: str, budget: int, measure: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` ending at a word boundary, plus an ellipsis, within ``budget``."""
    if measure(text) <= budget:
        return text
    words = text.split(" ")
    while words:
        words.pop()
        candidate = " ".join(words).rstrip(" ,;:-") + ELLIPSIS
        if measure(candidate) <= budget:
            return candidate if words else ""
    return ""


def short_text(message: Message, budget: int, measure: Callable[[str], int] = len, link_cost: int | None = None) -> str:
    """The deterministic short form for SMS and social posts.

    ``[Status] Title: first sentence. <link>``. It never contradicts the page because it
    is only ever a prefix of what the page says. When over ``budget`` (measured with
    ``measure``; ``link_cost`` overrides the link's length where a platform counts URLs
    as a fixed number of characters), the sentence is cut at a word with an ellipsis, then
    the title; the link is always kept whole at the end.
    """
    link = message.public_url
    link_len = link_cost if link_cost is not None else measure(link)
    head = one_line(f"{drill_mark() + ' ' if message.drill else ''}[{message.status_label}] {message.incident_title}")
    sentence = first_sentence(message.body_text)

    def total(text: str) -> int:
        return measure(text) + 1 + link_len

    full = f"{head}: {sentence}" if sentence else head
    if total(full) <= budget:
        return f"{full} {link}"
    room = budget - 1 - link_len
    if sentence and measure(head) + 2 < room:
        cut = cut_at_word(sentence, room - measure(head) - 2, measure)
        if cut:
            return f"{head}: {cut} {link}"
    cut_head = cut_at_word(head, room, measure)
    return f"{cut_head} {link}" if cut_head else link
