"""The catalogs' upkeep: extract each domain's messages from its sources, update every
language's ``.po`` from them, and list what a language misses.

    python -m broadcaster.i18n.catalogs update [domain …]   # after changing strings
    python -m broadcaster.i18n.catalogs init <language>     # a new language: empty .po files
    python -m broadcaster.i18n.catalogs check               # exit 1 when a message is untranslated
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from broadcaster.i18n import LOCALE_DIR, SOURCE_LANGUAGE, shipped_languages
from broadcaster.i18n.domains import DOMAINS, ROOT

KEYWORDS: dict[str, Any] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "N_": None,
}
JINJA_OPTIONS = {
    "extensions": "jinja2.ext.i18n",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
    "newstyle_gettext": "true",
}
COMMENT_TAGS = ("translators:",)


@dataclass(frozen=True)
class Missing:
    language: str
    domain: str
    msgid: str


def sources(domain: str) -> Iterator[Path]:
    """The files whose strings belong to ``domain``."""
    seen: set[Path] = set()
    for pattern in DOMAINS[domain]:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file() and path not in seen and "__pycache__" not in path.parts:
                seen.add(path)
                yield path


def extract(domain: str) -> Catalog:
    """``domain``'s messages as they are in the sources now."""
    catalog = Catalog(domain=domain, project="broadcaster", charset="utf-8")
    for path in sources(domain):
        method = "python" if path.suffix == ".py" else "jinja2.ext:babel_extract"
        options = {} if method == "python" else JINJA_OPTIONS
        for line, message, comments, context in extract_from_file(
            method, str(path), keywords=KEYWORDS, comment_tags=COMMENT_TAGS, options=options, strip_comment_tags=True
        ):
            catalog.add(message, None, [(str(path.relative_to(ROOT)), line)], auto_comments=comments, context=context)
    return catalog


def po_path(language: str, domain: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


def read(path: Path, language: str, domain: str) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=language, domain=domain)


def write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=False, include_lineno=False)


def update(domains: Iterable[str]) -> None:
    """Each domain's template (``.pot``) from its sources, and every language's ``.po`` from it."""
    for domain in domains:
        template = extract(domain)
        write(LOCALE_DIR / f"{domain}.pot", template)
        for language in shipped_languages()[1:]:
            path = po_path(language, domain)
            catalog = read(path, language, domain) if path.exists() else Catalog(locale=language, domain=domain)
            catalog.update(template, no_fuzzy_matching=True)
            catalog.obsolete.clear()
            write(path, catalog)


def init(language: str) -> None:
    """Empty catalogs of every domain for a new language."""
    for domain in DOMAINS:
        path = po_path(language, domain)
        if not path.exists():
            catalog = Catalog(locale=language, domain=domain)
            catalog.update(extract(domain), no_fuzzy_matching=True)
            write(path, catalog)


def missing(languages: Iterable[str] | None = None) -> list[Missing]:
    """Every message the sources use that a language's catalog lacks, leaves empty or marks fuzzy."""
    found: list[Missing] = []
    templates = {domain: extract(domain) for domain in DOMAINS}
    for language in languages or shipped_languages()[1:]:
        if language == SOURCE_LANGUAGE:
            continue
        for domain, template in templates.items():
            path = po_path(language, domain)
            catalog = read(path, language, domain) if path.exists() else Catalog(locale=language, domain=domain)
            for message in template:
                if not message.id:
                    continue
                have = catalog.get(message.id, message.context)
                text = None if have is None else have.string
                strings = list(text) if isinstance(text, tuple | list) else [text]
                if have is None or have.fuzzy or not all(strings):
                    key = message.id[0] if isinstance(message.id, tuple | list) else message.id
                    found.append(Missing(language, domain, key))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broadcaster.i18n.catalogs", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("update", help="extract the sources and update every .po")
    up.add_argument("domains", nargs="*", help=f"some of: {', '.join(DOMAINS)} (default: all)")
    new = commands.add_parser("init", help="start a new language")
    new.add_argument("language")
    commands.add_parser("check", help="list untranslated messages; exit 1 if any")
    args = parser.parse_args(argv)
    if args.command == "update":
        unknown = [d for d in args.domains if d not in DOMAINS]
        if unknown:
            parser.error(f"unknown domain(s): {', '.join(unknown)}")
        update(args.domains or list(DOMAINS))
        return 0
    if args.command == "init":
        init(args.language)
        return 0
    gaps = missing()
    for gap in gaps:
        print(f"{gap.language}/{gap.domain}: {gap.msgid!r}")
    print(f"{len(gaps)} untranslated message(s)" if gaps else "every catalog is complete")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
