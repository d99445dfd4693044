"""The mirror's site: every public page, feed, JSON document and asset, as objects to push.

The pages are the app's own renderings (``status_page.public.html``) with the live script off and
two parts only the mirror has: a banner saying what this copy is and when it was published, and a
note under the sign-up form, which posts to the main site. Links between the mirror's pages are
relative to the file they sit in (``incidents/abc.html`` links ``../history.html``), so the copy
works under any prefix, from any static server, even from disk; a link to something the mirror
does not hold (``/subscribe``, the preferences page) goes to the main site. The feeds and the
``api/v2`` JSON link into the mirror the same way; their ids (Atom ``id``, RSS ``guid``,
``page.url``) stay the main site's, so a reader sees the same entries on both.

Each page is a file (``incidents/abc.html``, ``history/2.html``) and, so that old links and DNS
failover keep working, also sits at the main site's path: in a bucket as ``incidents/abc`` (served
as HTML), in a directory as ``incidents/abc/index.html``. The banner's time is left out of each
object's digest: a page whose content did not change is not pushed again, and keeps saying when
it last was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.config import Settings
from broadcaster.views.calendar import CONTENT_TYPE as ICS
from broadcaster.views.calendar import calendar
from broadcaster.views.public import all_incident_ids, load_history, load_incident, load_snapshot, recent_updates
from broadcaster.views.statuspage_v2 import ENDPOINTS
from status_page.public.html import (
    ASSET_CACHE_CONTROL,
    ATOM,
    HISTORY_PER_PAGE,
    HTML,
    JSON,
    RSS,
    api_json,
    assets,
    feed,
    history_html,
    history_url,
    incident_html,
    index_html,
    not_found_html,
)

PUBLISHED_ISO = "@@mirror-published-iso@@"
PUBLISHED_TEXT = "@@mirror-published-text@@"
_PRETTY = re.compile(r"^/(history(/[0-9]+)?|incidents/[a-z0-9]+)$")  # the app's paths without a file name
_HTML_LINK = re.compile(r'(\s(?:href|src|action)=")([^"]*)(")')
_FEED_LINK = re.compile(r'(\shref=")([^"]*)(")|(<link>)([^<]*)(</link>)')


class Layout(StrEnum):
    """Where a page sits besides its file name: how a target serves the main site's paths."""

    BUCKET = "bucket"  # incidents/abc (an object whose type says HTML)
    DIRECTORY = "directory"  # incidents/abc/index.html (a directory index)


class Kind(StrEnum):
    HTML = "html"
    FEED = "feed"
    JSON = "json"
    ASSET = "asset"
    PLAIN = "plain"  # the calendar: nothing to link
    ERROR = "error"  # 404.html: served at any depth, so its links stay root-relative


@dataclass(frozen=True, slots=True)
class SiteObject:
    """One object to push; ``body`` holds the banner's time as a placeholder (``stamped`` fills it in)."""

    body: bytes
    content_type: str
    cache_control: str
    digest: str  # SHA-256 of ``body``

    def stamped(self, published_at: datetime) -> bytes:
        """The body as pushed at ``published_at``."""
        if PUBLISHED_ISO.encode() not in self.body:
            return self.body
        iso = published_at.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        text = published_at.strftime("%Y-%m-%d %H:%M UTC").encode()
        return self.body.replace(PUBLISHED_ISO.encode(), iso).replace(PUBLISHED_TEXT.encode(), text)


@dataclass(frozen=True, slots=True)
class Page:
    path: str  # the main site's path: "/", "/incidents/abc", "/api/v2/summary.json"
    body: bytes  # links root-relative (HTML) or absolute (feeds, JSON), as the app renders them
    content_type: str
    kind: Kind


def file_key(path: str) -> str:
    """The object a main-site path is in: ``/`` -> ``index.html``, ``/history/2`` -> ``history/2.html``."""
    if path == "/":
        return "index.html"
    return path[1:] + ".html" if _PRETTY.match(path) else path[1:]


def alias_key(path: str, layout: Layout) -> str | None:
    """The main site's own path as an object, where the layout serves it (``None``: the file is enough)."""
    if not _PRETTY.match(path):
        return None
    return path[1:] if layout is Layout.BUCKET else f"{path[1:]}/index.html"


@dataclass(frozen=True)
class Site:
    """The rendered page, ready to be laid out for a target."""

    pages: dict[str, Page]  # by path
    main_url: str  # the main site, no trailing slash
    max_age_s: int

    def objects(self, layout: Layout) -> dict[str, SiteObject]:
        """Every object of the mirror for ``layout``, by key, links made relative to each key."""
        found: dict[str, SiteObject] = {}
        for page in self.pages.values():
            keys = [file_key(page.path), alias_key(page.path, layout)]
            for key in (k for k in keys if k is not None):
                body = self._relinked(page, key)
                cache = ASSET_CACHE_CONTROL if page.kind is Kind.ASSET else f"public, max-age={self.max_age_s}"
                found[key] = SiteObject(body, page.content_type, cache, hashlib.sha256(body).hexdigest())
        return found

    def link(self, url: str, from_key: str) -> str:
        """``url`` (root-relative or on the main site) as seen from the object ``from_key``."""
        path, hashmark, fragment = url.partition("#")
        if path == self.main_url or path.startswith(self.main_url + "/"):
            path = path[len(self.main_url) :] or "/"
        if not path.startswith("/") or path.startswith("//"):
            return url
        if path not in self.pages:
            return url if url.startswith(self.main_url) else self.main_url + url
        relative = posixpath.relpath(file_key(path), posixpath.dirname(from_key) or ".")
        return relative + hashmark + fragment

    def _relinked(self, page: Page, key: str) -> bytes:
        if page.kind is Kind.HTML:
            return _sub(_HTML_LINK, page.body, lambda url: self.link(url, key) if url.startswith("/") else url)
        if page.kind is Kind.FEED:
            return _sub(_FEED_LINK, page.body, lambda url: self.link(url, key))
        if page.kind is Kind.JSON:
            data = _walk(json.loads(page.body), lambda url: self.link(url, key))
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return page.body


def _sub(pattern: re.Pattern[str], body: bytes, link: Callable[[str], str]) -> bytes:
    def replace(match: re.Match[str]) -> str:
        groups = match.groups()
        start = 0 if groups[0] is not None else 3
        before, url, after = groups[start : start + 3]
        return f"{before}{link(url)}{after}"

    return pattern.sub(replace, body.decode()).encode()


def _walk(value: Any, link: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: v if k == "url" else _walk(v, link) for k, v in value.items()}  # page.url names the page
    if isinstance(value, list):
        return [_walk(v, link) for v in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return link(value)
    return value


def mirror_info(settings: Settings) -> dict[str, str]:
    """What the banner says: the main site, and placeholders for the time of publication."""
    main = settings.public_url.rstrip("/")
    return {
        "main_url": main + "/",
        "main_host": urlsplit(main).netloc or main,
        "published_iso": PUBLISHED_ISO,
        "published_text": PUBLISHED_TEXT,
    }


async def render_site(settings: Settings, engine: AsyncEngine, *, max_age_s: int = 60) -> Site:
    """Read the public view once and render every page of the mirror."""
    pages: dict[str, Page] = {}

    def add(path: str, body: bytes, content_type: str, kind: Kind) -> None:
        pages[path] = Page(path, body, content_type, kind)

    async with engine.connect() as conn:
        snapshot = await load_snapshot(conn, settings)
        snapshot = dataclasses.replace(snapshot, page={**snapshot.page, "mirror": mirror_info(settings)})
        page = snapshot.page
        add("/", index_html(settings, snapshot, live=False), HTML, Kind.HTML)
        for path in ENDPOINTS:
            add(f"/api/v2/{path}", api_json(snapshot, path), JSON, Kind.JSON)
        entries = await recent_updates(conn)
        add("/history.atom", feed(settings, page, entries, "atom"), ATOM, Kind.FEED)
        add("/history.rss", feed(settings, page, entries, "rss"), RSS, Kind.FEED)
        add("/maintenance.ics", calendar(snapshot), ICS, Kind.PLAIN)
        number, count = 1, 1
        while number <= count:
            items, count = await load_history(conn, number, HISTORY_PER_PAGE)
            body = history_html(settings, page, items, number, count, live=False)
            add(history_url(number), body, HTML, Kind.HTML)
            number += 1
        names = {c["id"]: c["name"] for c in snapshot.components}
        for incident_id in await all_incident_ids(conn):
            incident = await load_incident(conn, incident_id)
            if incident is not None:
                add(
                    f"/incidents/{incident_id}",
                    incident_html(settings, page, incident, names, live=False),
                    HTML,
                    Kind.HTML,
                )
    for asset in assets(settings.templates_dir).values():
        add(asset.url, asset.body, asset.content_type, Kind.ASSET)
    for url, (body, content_type) in page["brand"].assets().items():
        add(url, body, content_type, Kind.ASSET)
    add("/404.html", not_found_html(settings), HTML, Kind.ERROR)
    return Site(pages, settings.public_url.rstrip("/"), max_age_s)
