"""The update's sanitized HTML in a chat's own markup; not a channel.

``render.markdown_to_html`` made ``Message.body_html`` from the commander's markdown, and
sanitized it to a known set of tags; each chat speaks a dialect of its own:

| dialect       | bold       | link               | list   | escaped                       |
|---------------|------------|--------------------|--------|-------------------------------|
| ``SLACK``     | ``*b*``    | ``<url|text>`` (a) | ``• `` | ``& < >`` as entities         |
| ``DISCORD``   | ``**b**``  | ``[text](url)``    | ``• `` | markdown signs, backslashed   |
| ``TEAMS``     | ``**b**``  | ``[text](url)``    | ``- `` | nothing (no escapes in cards) |
| ``GOOGLE_CHAT`` | ``<b>b</b>`` | ``<a href>``     | ``• `` | HTML; lines end in ``<br>``   |

(a) a Slack link: its URL, a bar, its text.

Starting from the sanitized HTML, not the markdown, keeps every chat to what the page shows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

_SPACE = re.compile(r"\s+")
_SPACE_RUN = re.compile(r" {2,}")
_DISCORD_SIGNS = re.compile(r"([\\*_~`|<>\[\]()#])")


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one chat writes emphasis, code, links, lists, quotes and line breaks."""

    bold: tuple[str, str]
    italic: tuple[str, str]
    strike: tuple[str, str]
    code: tuple[str, str]
    pre: tuple[str, str]  # around a preformatted block; ("", "") keeps its lines only
    escape: Callable[[str], str]  # running text
    escape_code: Callable[[str], str]  # text inside code, where markup signs are literal
    link: Callable[[str, str], str]  # (url, text already in the dialect) -> a link
    bullet: str = "• "
    quote: str = "> "
    line_break: str = "\n"


def slack_escape(text: str) -> str:
    """Slack's three escapes: ``&``, ``<`` and ``>`` as entities, everywhere in its text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, text: str) -> str:
    url = slack_escape(url).replace("|", "%7C")
    return f"<{url}>" if not text or text == url else f"<{url}|{text}>"


def _markdown_link(url: str, text: str) -> str:
    url = url.replace(")", "%29").replace(" ", "%20")
    return f"[{text or url}]({url})"


def _html_link(url: str, text: str) -> str:
    return f'<a href="{html.escape(url)}">{text or html.escape(url, quote=False)}</a>'


def _same(text: str) -> str:
    return text


SLACK = Dialect(
    bold=("*", "*"),
    italic=("_", "_"),
    strike=("~", "~"),
    code=("`", "`"),
    pre=("```\n", "\n```"),
    escape=slack_escape,
    escape_code=slack_escape,
    link=_slack_link,
)
DISCORD = Dialect(
    bold=("**", "**"),
    italic=("*", "*"),
    strike=("~~", "~~"),
    code=("`", "`"),
    pre=("```\n", "\n```"),
    escape=lambda text: _DISCORD_SIGNS.sub(r"\\\1", text),
    escape_code=_same,
    link=_markdown_link,
)
TEAMS = Dialect(  # Adaptive Cards' TextBlock markdown: emphasis, lists and links, nothing else
    bold=("**", "**"),
    italic=("_", "_"),
    strike=("", ""),
    code=("", ""),
    pre=("", ""),
    escape=_same,
    escape_code=_same,
    link=_markdown_link,
    bullet="- ",
    quote="",
)
GOOGLE_CHAT = Dialect(  # the HTML subset of a card's textParagraph
    bold=("<b>", "</b>"),
    italic=("<i>", "</i>"),
    strike=("<strike>", "</strike>"),
    code=("", ""),
    pre=("", ""),
    escape=lambda text: html.escape(text, quote=False),
    escape_code=lambda text: html.escape(text, quote=False),
    link=_html_link,
    quote="",
    line_break="<br>",
)

_INLINE = {"strong": "bold", "b": "bold", "em": "italic", "i": "italic", "s": "strike", "del": "strike", "code": "code"}
_BLOCKS = {"p", "h3", "h4", "h5", "h6", "pre", "blockquote", "li", "tr", "ul", "ol", "table", "hr"}


@dataclass
class _Frame:
    tag: str
    href: str = ""
    pieces: list[str] = field(default_factory=list)


class _Converter(HTMLParser):
    def __init__(self, dialect: Dialect) -> None:
        super().__init__(convert_charrefs=True)
        self.dialect = dialect
        self.blocks: list[tuple[str, bool]] = []  # (text, is a list item)
        self.frames = [_Frame("")]
        self.lists: list[int | None] = []  # None: a bulleted list; n: the next number
        self.item_prefix = ""
        self.quotes = 0
        self.pre = False
        self.tables = 0
        self.cell = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self._flush()
        if tag in ("ul", "ol"):
            self.lists.append(None if tag == "ul" else 1)
        elif tag == "li":
            number = self.lists[-1] if self.lists else None
            marker = self.dialect.bullet if number is None else f"{number}. "
            if self.lists and number is not None:
                self.lists[-1] = number + 1
            self.item_prefix = "  " * max(0, len(self.lists) - 1) + marker
        elif tag == "blockquote":
            self.quotes += 1
        elif tag == "pre":
            self.pre = True
        elif tag == "hr":
            self.blocks.append(("———", False))
        elif tag == "br":
            self.frames[-1].pieces.append("\n")
        elif tag == "table":
            self.tables += 1
        elif tag == "tr":
            self.cell = 0
        elif tag in ("td", "th"):
            if self.cell:
                self.frames[-1].pieces.append(" | ")
            self.cell += 1
        elif tag in _INLINE or tag == "a" or tag in ("h3", "h4", "h5", "h6"):
            self.frames.append(_Frame(tag, href=dict(attrs).get("href") or ""))

    def handle_endtag(self, tag: str) -> None:
        if len(self.frames) > 1 and self.frames[-1].tag == tag:
            frame = self.frames.pop()
            self.frames[-1].pieces.append(self._close(frame))
        if tag == "pre":
            self._flush_pre()
        elif tag in _BLOCKS or tag in ("h3", "h4", "h5", "h6"):
            self._flush()
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "blockquote":
            self.quotes = max(0, self.quotes - 1)
        elif tag == "table":
            self.tables = max(0, self.tables - 1)

    def handle_data(self, data: str) -> None:
        if self.pre:
            self.frames[-1].pieces.append(self.dialect.escape_code(data))
            return
        text = _SPACE.sub(" ", data)
        inside_code = any(frame.tag == "code" for frame in self.frames)
        self.frames[-1].pieces.append((self.dialect.escape_code if inside_code else self.dialect.escape)(text))

    def _close(self, frame: _Frame) -> str:
        inner = "".join(frame.pieces)
        if frame.tag == "a":
            return self.dialect.link(frame.href, inner.strip()) if frame.href else inner
        style = "bold" if frame.tag.startswith("h") else _INLINE[frame.tag]
        opening, closing = getattr(self.dialect, style)
        core = inner.strip()
        if not core:
            return inner
        # Slack and markdown only see a mark that hugs its text: spaces go outside it.
        lead, trail = inner[: len(inner) - len(inner.lstrip())], inner[len(inner.rstrip()) :]
        return f"{lead}{opening}{core}{closing}{trail}"

    def _flush(self) -> None:
        while len(self.frames) > 1:  # an unclosed inline tag ends with its block
            frame = self.frames.pop()
            self.frames[-1].pieces.append(self._close(frame))
        lines = [_SPACE_RUN.sub(" ", line).strip() for line in "".join(self.frames[0].pieces).split("\n")]
        self.frames[0].pieces.clear()
        text = "\n".join(line for line in lines if line)
        if text:
            self._add(text)

    def _flush_pre(self) -> None:
        self.pre = False
        text = "".join(self.frames[0].pieces).strip("\n")
        self.frames[0].pieces.clear()
        if text:
            opening, closing = self.dialect.pre
            self._add(f"{opening}{text}{closing}")

    def _add(self, text: str) -> None:
        prefix, self.item_prefix = self.item_prefix, ""
        indent = " " * len(prefix)
        lines = text.split("\n")
        lines = [prefix + lines[0], *(indent + line for line in lines[1:])] if prefix else lines
        if self.quotes and self.dialect.quote:
            lines = [self.dialect.quote * self.quotes + line for line in lines]
        self.blocks.append(("\n".join(lines), bool(prefix or self.lists or self.tables)))


def markup(body_html: str, dialect: Dialect) -> str:
    """``body_html`` (sanitized by ``render.markdown_to_html``) written in ``dialect``.

    Paragraphs are separated by a blank line, list items by a line break.
    """
    converter = _Converter(dialect)
    converter.feed(body_html)
    converter.close()
    converter._flush()
    text = ""
    for index, (block, is_item) in enumerate(converter.blocks):
        if index:
            text += "\n" if is_item and converter.blocks[index - 1][1] else "\n\n"
        text += block
    return text if dialect.line_break == "\n" else text.replace("\n", dialect.line_break)
