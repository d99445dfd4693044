"""The mirror's objects: file names, aliases per layout, relative links, digests without the banner's time."""

from __future__ import annotations

import json
import posixpath
import re
from datetime import UTC, datetime

import pytest

from status_page.mirror.site import PUBLISHED_ISO, PUBLISHED_TEXT, Kind, Layout, Page, Site, alias_key, file_key

MAIN = "https://status.example.test"
HTML_PAGE = (
    '<p><a href="/">Home</a> <a href="/history">History</a> <a href="/history/2#x">Older</a> '
    '<a href="/incidents/abc#update-1">Incident</a> <a href="/#subscribe">Subscribe</a> '
    '<link rel="stylesheet" href="/assets/status.0123456789ab.css"> <form action="/subscribe"></form> '
    '<a href="https://elsewhere.example/x">Out</a> <a href="https://status.example.test/history">Main</a> '
    '<a href="/subscriptions/manage?token=a&amp;b=c">Manage</a> <a href="//cdn.example/x">Cdn</a> '
    f'published at <time datetime="{PUBLISHED_ISO}">{PUBLISHED_TEXT}</time></p>'
)


def page(path: str, body: str, kind: Kind, content_type: str = "text/html; charset=utf-8") -> Page:
    return Page(path, body.encode(), content_type, kind)


@pytest.fixture
def site() -> Site:
    pages = [
        page("/", HTML_PAGE, Kind.HTML),
        page("/history", HTML_PAGE, Kind.HTML),
        page("/history/2", HTML_PAGE, Kind.HTML),
        page("/incidents/abc", HTML_PAGE, Kind.HTML),
        page("/assets/status.0123456789ab.css", "body{}", Kind.ASSET, "text/css"),
        page(
            "/history.atom",
            f'<feed><id>{MAIN}/history.atom</id><link rel="self" href="{MAIN}/history.atom"/>'
            f'<entry><id>{MAIN}/incidents/abc#update-1</id><link href="{MAIN}/incidents/abc#update-1"/></entry></feed>',
            Kind.FEED,
            "application/atom+xml",
        ),
        page(
            "/history.rss",
            f"<rss><link>{MAIN}/history</link><guid>{MAIN}/incidents/abc#update-1</guid></rss>",
            Kind.FEED,
            "application/rss+xml",
        ),
        page(
            "/api/v2/incidents/unresolved.json",
            json.dumps({"page": {"url": MAIN}, "incidents": [{"shortlink": f"{MAIN}/incidents/abc"}]}),
            Kind.JSON,
            "application/json",
        ),
        page("/404.html", '<a href="/">Home</a>', Kind.ERROR),
    ]
    return Site({p.path: p for p in pages}, MAIN, 60)


def test_file_names_and_aliases() -> None:
    assert file_key("/") == "index.html"
    assert file_key("/history/3") == "history/3.html"
    assert file_key("/incidents/abc") == "incidents/abc.html"
    assert file_key("/api/v2/summary.json") == "api/v2/summary.json"
    assert alias_key("/incidents/abc", Layout.BUCKET) == "incidents/abc"
    assert alias_key("/incidents/abc", Layout.DIRECTORY) == "incidents/abc/index.html"
    assert alias_key("/history", Layout.DIRECTORY) == "history/index.html"
    assert alias_key("/", Layout.BUCKET) is None and alias_key("/history.atom", Layout.BUCKET) is None


def hrefs(body: bytes) -> list[str]:
    return re.findall(r'(?:href|action)="([^"]*)"', body.decode())


@pytest.mark.parametrize("layout", list(Layout))
def test_every_link_into_the_mirror_resolves_to_one_of_its_objects(site: Site, layout: Layout) -> None:
    objects = site.objects(layout)
    for key, item in objects.items():
        if item.content_type.startswith("text/html") and key != "404.html":
            for link in hrefs(item.body):
                if "://" in link or link.startswith("//"):
                    continue
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(key), link.split("#")[0]))
                assert resolved in objects, f"{key}: {link} -> {resolved}"


def test_links_are_relative_to_the_file_and_the_rest_goes_to_the_main_site(site: Site) -> None:
    objects = site.objects(Layout.DIRECTORY)
    nested = hrefs(objects["incidents/abc/index.html"].body)
    assert nested[:5] == [
        "../../index.html",
        "../../history.html",
        "../../history/2.html#x",
        "../abc.html#update-1",
        "../../index.html#subscribe",
    ]
    top = hrefs(objects["index.html"].body)
    assert "assets/status.0123456789ab.css" in top
    assert f"{MAIN}/subscribe" in top, "the sign-up form posts to the main site"
    assert f"{MAIN}/subscriptions/manage?token=a&amp;b=c" in top
    assert "https://elsewhere.example/x" in top and f"{MAIN}/history" in top and "//cdn.example/x" in top
    assert hrefs(objects["404.html"].body) == ["/"], "served at any depth: root-relative"


def test_feeds_and_json_link_into_the_mirror_but_keep_the_main_sites_ids(site: Site) -> None:
    objects = site.objects(Layout.BUCKET)
    atom = objects["history.atom"].body.decode()
    assert '<link rel="self" href="history.atom"/>' in atom and '<link href="incidents/abc.html#update-1"/>' in atom
    assert f"<id>{MAIN}/incidents/abc#update-1</id>" in atom
    rss = objects["history.rss"].body.decode()
    assert "<link>history.html</link>" in rss and f"<guid>{MAIN}/incidents/abc#update-1</guid>" in rss
    data = json.loads(objects["api/v2/incidents/unresolved.json"].body)
    assert data["incidents"][0]["shortlink"] == "../../../incidents/abc.html"
    assert data["page"]["url"] == MAIN


def test_cache_control_and_the_banner_time(site: Site) -> None:
    objects = site.objects(Layout.BUCKET)
    assert objects["index.html"].cache_control == "public, max-age=60"
    assert objects["assets/status.0123456789ab.css"].cache_control == "public, max-age=31536000, immutable"
    item = objects["index.html"]
    stamped = item.stamped(datetime(2026, 12, 2, 9, 30, 5, tzinfo=UTC)).decode()
    assert '<time datetime="2026-12-02T09:30:05Z">2026-12-02 09:30 UTC</time>' in stamped
    later = item.stamped(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    assert later != stamped.encode() and site.objects(Layout.BUCKET)["index.html"].digest == item.digest
