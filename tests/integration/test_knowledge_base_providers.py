"""Zendesk Guide and Freshdesk Solutions channels against local apps speaking their APIs.

A three-update incident makes one article per provider, rewritten twice; the public update
inside each stored article reads exactly as the update's plain text; resolving marks it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest

from broadcaster.errors import PermanentError, RateLimited, RetryableError
from broadcaster.message import Message
from channels.base import Thread
from channels.freshdesk import FreshdeskChannel
from channels.zendesk import ZendeskChannel
from sandbox.providers.freshdesk import FakeFreshdesk
from sandbox.providers.zendesk import FakeZendesk
from sandbox.serve import serve_app
from tests.support.factories import make_message


class PublicUpdateText(HTMLParser):
    """The text of ``<div class="public-update">``, one line per block element."""

    BLOCKS = frozenset({"p", "div", "li", "ul", "ol", "br", "blockquote", "pre", "h1", "h2", "h3", "h4"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # nesting of divs inside the public update; 0 = outside
        self.found = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += tag == "div"
            self.parts.append("\n" if tag in self.BLOCKS else "")
        elif tag == "div" and "public-update" in (dict(attrs).get("class") or "").split():
            self.depth, self.found = 1, self.found + 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= tag == "div"
            self.parts.append("\n" if tag in self.BLOCKS else "")

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def public_update_text(article_html: str) -> str:
    parser = PublicUpdateText()
    parser.feed(article_html)
    parser.close()
    assert parser.found == 1, "exactly one public-update section"
    return " ".join("".join(parser.parts).split())


def plain(text: str) -> str:
    return " ".join(text.split())


UPDATES = [
    make_message(
        update_id="upd1",
        status="investigating",
        update_number=1,
        body_html="<p>We are investigating <strong>elevated error rates</strong> on the API.</p>",
        body_text="We are investigating elevated error rates on the API.",
    ),
    make_message(
        update_id="upd2",
        status="identified",
        update_number=2,
        body_html="<p>We found the cause: a faulty deploy &amp; a full disk &lt;db-3&gt;.</p>\n"
        '<p>Rolling back now. See <a href="https://status.example.com">the status page</a>.</p>',
        body_text="We found the cause: a faulty deploy & a full disk <db-3>.\n\nRolling back now. See the status page.",
    ),
    make_message(
        update_id="upd3",
        status="resolved",
        update_number=3,
        body_html="<p>Error rates are back to normal. <em>No data was lost.</em></p>",
        body_text="Error rates are back to normal. No data was lost.",
    ),
]


@dataclass
class Zendesk:
    provider: FakeZendesk
    channel: ZendeskChannel

    def article(self, article_id: str) -> dict[str, Any]:
        stored = self.provider.articles[int(article_id)]
        translation = stored.translations["en-us"]
        return {"title": translation["title"], "body": translation["body"], "marks": stored.label_names}

    def drop(self, article_id: str) -> None:
        del self.provider.articles[int(article_id)]


@dataclass
class Freshdesk:
    provider: FakeFreshdesk
    channel: FreshdeskChannel

    def article(self, article_id: str) -> dict[str, Any]:
        stored = self.provider.articles[int(article_id)]
        assert stored["status"] == 2  # published
        return {"title": stored["title"], "body": stored["description"], "marks": stored["tags"]}

    def drop(self, article_id: str) -> None:
        del self.provider.articles[int(article_id)]


Setup = Zendesk | Freshdesk


@pytest.fixture(params=["zendesk", "freshdesk"])
async def kb(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    setup: Setup
    if request.param == "zendesk":
        zendesk = FakeZendesk()
        async with serve_app(zendesk.app) as base_url:
            zendesk.base_url = base_url
            setup = Zendesk(
                zendesk,
                ZendeskChannel(
                    base_url, zendesk.email, zendesk.api_token, "360001", permission_group_id=1501, timeout_s=5
                ),
            )
            yield setup
            await setup.channel.aclose()
    else:
        freshdesk = FakeFreshdesk()
        async with serve_app(freshdesk.app) as base_url:
            setup = Freshdesk(freshdesk, FreshdeskChannel(base_url, freshdesk.api_key, "73000012", timeout_s=5))
            yield setup
            await setup.channel.aclose()


async def publish(kb: Setup, message: Message, thread: Thread) -> dict[str, Any]:
    published = await kb.channel.publish(message, kb.channel.render(message), thread)
    assert published.thread is not None
    return dict(published.thread)


async def test_an_incident_is_one_article_updated_in_place(kb: Setup) -> None:
    thread: dict[str, Any] = {}
    article_ids = set()
    for message in UPDATES:
        thread = await publish(kb, message, thread)
        article_ids.add(thread["article_id"])
        article = kb.article(thread["article_id"])
        assert public_update_text(article["body"]) == plain(message.body_text)
        assert message.body_html in article["body"]
        assert article["title"] == kb.channel.render(message)["title"]

    assert len(article_ids) == 1 and len(kb.provider.articles) == 1
    final = kb.article(thread["article_id"])
    assert final["title"].startswith("[RESOLVED] Elevated API error rates")
    assert "<strong>RESOLVED</strong>" in final["body"]
    assert final["marks"] == ["incident", "broadcaster", "resolved"]
    methods = [received.method for received in kb.provider.received]
    if isinstance(kb, Zendesk):  # translation twice, then the labels once when they changed
        assert methods == ["POST", "PUT", "PUT", "PUT"]
        assert kb.provider.received[-1].path == f"/api/v2/help_center/articles/{thread['article_id']}.json"
    else:
        assert methods == ["POST", "PUT", "PUT"]


async def test_a_vanished_article_is_created_again(kb: Setup) -> None:
    thread = await publish(kb, UPDATES[0], {})
    kb.drop(thread["article_id"])
    thread2 = await publish(kb, UPDATES[1], thread)
    assert thread2["article_id"] != thread["article_id"]
    assert public_update_text(kb.article(thread2["article_id"])["body"]) == plain(UPDATES[1].body_text)
    thread3 = await publish(kb, UPDATES[2], thread2)
    assert thread3["article_id"] == thread2["article_id"]
    assert list(kb.provider.articles) == [int(thread2["article_id"])]


async def test_server_errors_are_retryable_and_leave_no_duplicate(kb: Setup) -> None:
    kb.provider.fail(500, times=2)
    for _ in range(2):
        with pytest.raises(RetryableError) as caught:
            await publish(kb, UPDATES[0], {})
        assert not isinstance(caught.value, RateLimited)
    thread = await publish(kb, UPDATES[0], {})
    assert list(kb.provider.articles) == [int(thread["article_id"])]


async def test_rate_limit_carries_retry_after(kb: Setup) -> None:
    kb.provider.fail(429, retry_after_s=7)
    with pytest.raises(RateLimited) as caught:
        await publish(kb, UPDATES[0], {})
    assert caught.value.retry_after_s == 7
    assert not kb.provider.articles


async def test_wrong_credentials_need_attention(kb: Setup) -> None:
    if isinstance(kb, Zendesk):
        kb.provider.api_token = "rotated"
    else:
        kb.provider.api_key = "rotated"
    with pytest.raises(PermanentError, match=r"^credentials need attention: .* 401"):
        await publish(kb, UPDATES[0], {})


async def test_zendesk_refuses_an_article_without_permission_group() -> None:
    zendesk = FakeZendesk()
    async with serve_app(zendesk.app) as base_url:
        channel = ZendeskChannel(base_url, zendesk.email, zendesk.api_token, "360001")
        message = UPDATES[0]
        with pytest.raises(PermanentError, match="permission_group_id"):
            await channel.publish(message, channel.render(message), {})
        await channel.aclose()


async def test_freshdesk_reports_validation_errors_by_field() -> None:
    freshdesk = FakeFreshdesk(folder_ids=(1,))
    async with serve_app(freshdesk.app) as base_url:
        channel = FreshdeskChannel(base_url, freshdesk.api_key, "1")
        message = make_message(incident_title="")
        rendition = {**channel.render(message), "title": " "}
        with pytest.raises(PermanentError, match=r"title: It should not be blank \(invalid_value\)"):
            await channel.publish(message, rendition, {})
        await channel.aclose()
