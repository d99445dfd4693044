"""The knowledge-base channels (Zendesk Guide, Freshdesk Solutions): rendering, requests, errors.

Both channels render the same article from ``templates/knowledge_base/``, so the render
table runs against each; provider answers are faked at the transport seam.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from broadcaster.config import Settings
from broadcaster.errors import ConfigError, PermanentError, RateLimited, RetryableError
from broadcaster.message import AgentNotes, ApprovedAnswer
from channels import freshdesk as freshdesk_module
from channels import zendesk as zendesk_module
from channels._articles import ArticleGone
from channels.base import ChannelContext
from channels.freshdesk import FreshdeskChannel
from channels.zendesk import ZendeskChannel
from tests.support.factories import make_message

Handler = Callable[[httpx.Request], httpx.Response]
KnowledgeBase = ZendeskChannel | FreshdeskChannel
ZD_TOKEN = "zd-secret-token"
FD_KEY = "fd-secret-key"


def zendesk(handler: Handler, **options: Any) -> ZendeskChannel:
    return ZendeskChannel(
        "https://acme.zendesk.test",
        "agent@example.com",
        ZD_TOKEN,
        "360001",
        transport=httpx.MockTransport(handler),
        **options,
    )


def freshdesk(handler: Handler) -> FreshdeskChannel:
    return FreshdeskChannel("https://acme.freshdesk.test", FD_KEY, "73000012", transport=httpx.MockTransport(handler))


def no_calls(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request {request.method} {request.url}")


@pytest.fixture(params=[zendesk, freshdesk], ids=["zendesk", "freshdesk"])
async def channel(request: pytest.FixtureRequest) -> AsyncIterator[KnowledgeBase]:
    built: KnowledgeBase = request.param(no_calls)
    yield built
    await built.aclose()


# -- render -----------------------------------------------------------------------------

SUFFIX = " — what to tell callers"
RENDER_CASES: list[tuple[str, dict[str, Any], str, list[str], list[str]]] = [
    # (case, message overrides, title, in body, not in body)
    (
        "first update",
        {},
        "[Investigating] Elevated API error rates" + SUFFIX,
        [
            '<div class="public-update">\n<p>We are investigating <strong>elevated error rates</strong> '
            "on the API. Next update in 30 minutes.</p>\n</div>",
            "<strong>Status:</strong> Investigating",
            "<strong>Last updated:</strong> 2026-11-23 10:05 UTC (update 1)",
            "<h2>Talking points</h2>\n<p>Apologise; the API is failing for some requests; no data is lost.</p>",
            "<li><strong>Q: When will it be fixed?</strong>\n<p>We will update within 30 minutes.</p>",
            "<h2>Do not say</h2>\n<p>Do not guess a cause.</p>",
            "<h2>Escalation</h2>\n<p>Enterprise customers: transfer to the on-call TAM.</p>",
            "<li>API: Partial outage</li>",
            '<a href="https://status.example.com/incidents/inc000000001">',
        ],
        ["RESOLVED", "DRILL", "Next update:"],
    ),
    (
        "resolved",
        {"status": "resolved", "update_number": 3},
        "[RESOLVED] Elevated API error rates" + SUFFIX,
        [
            "<strong>RESOLVED</strong> as of 2026-11-23 10:05 UTC. Tell callers the issue is fixed",
            "<strong>Status:</strong> RESOLVED",
        ],
        [],
    ),
    (
        "maintenance completed",
        {
            "kind": "maintenance",
            "status": "completed",
            "impact": "maintenance",
            "scheduled_for": datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
            "scheduled_until": datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
        },
        "[RESOLVED] Elevated API error rates" + SUFFIX,
        [
            "Tell callers the maintenance is complete",
            "<strong>Scheduled:</strong> 2026-11-23 09:00 UTC to 2026-11-23 11:00 UTC",
        ],
        [],
    ),
    (
        "drill",
        {"drill": True},
        "[DRILL] [Investigating] Elevated API error rates" + SUFFIX,
        ["DRILL: this is an exercise, not a real incident."],
        [],
    ),
    (
        "next update time",
        {"next_update_at": datetime(2026, 11, 23, 10, 35, tzinfo=UTC)},
        "[Investigating] Elevated API error rates" + SUFFIX,
        ["<strong>Next update:</strong> 2026-11-23 10:35 UTC"],
        [],
    ),
    (
        "agent text is escaped; lines and bullets keep their shape",
        {
            "agent": AgentNotes(
                talking_points="Say <b>sorry</b> & mean it\nthen wait\n\n- one\n* two\nafter",
                approved_answers=(ApprovedAnswer("Is <my> data safe?", "Yes.\nNothing was lost."),),
                do_not_say="<script>alert(1)</script>",
            )
        },
        "[Investigating] Elevated API error rates" + SUFFIX,
        [
            "<p>Say &lt;b&gt;sorry&lt;/b&gt; &amp; mean it<br>then wait</p><ul><li>one</li><li>two</li></ul>"
            "<p>after</p>",
            "<strong>Q: Is &lt;my&gt; data safe?</strong>\n<p>Yes.<br>Nothing was lost.</p>",
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>",
        ],
        ["<b>sorry", "<script>", "<h2>Escalation</h2>"],
    ),
    (
        "no agent notes",
        {"agent": AgentNotes()},
        "[Investigating] Elevated API error rates" + SUFFIX,
        ["No talking points for this update: stay with the public update above."],
        ["Approved answers", "Do not say", "Escalation"],
    ),
    (
        "no components",
        {"components": ()},
        "[Investigating] Elevated API error rates" + SUFFIX,
        ["No components are marked as affected."],
        ['<ul class="components">'],
    ),
    (
        "title folded to one line and escaped only in the body",
        {"incident_title": "API\r\nerrors <& timeouts>"},
        "[Investigating] API errors <& timeouts>" + SUFFIX,
        [],
        ["<& timeouts>"],
    ),
]


@pytest.mark.parametrize(
    ("overrides", "title", "present", "absent"),
    [case[1:] for case in RENDER_CASES],
    ids=[case[0] for case in RENDER_CASES],
)
async def test_render(
    channel: KnowledgeBase, overrides: dict[str, Any], title: str, present: list[str], absent: list[str]
) -> None:
    rendition = channel.render(make_message(**overrides))
    assert set(rendition) == {"title", "body_html"}
    assert rendition["title"] == title
    for text in present:
        assert text in rendition["body_html"]
    for text in absent:
        assert text not in rendition["body_html"]


async def test_long_title_is_cut_at_a_word(channel: KnowledgeBase) -> None:
    title = channel.render(make_message(incident_title="word " * 80))["title"]
    assert len(title) <= channel.title_max_chars
    assert title.endswith("word…")


async def test_both_channels_render_the_same_article() -> None:
    message = make_message(status="monitoring", update_number=2)
    zd, fd = zendesk(no_calls), freshdesk(no_calls)
    assert zd.render(message) == fd.render(message)
    await zd.aclose()
    await fd.aclose()


# -- requests ---------------------------------------------------------------------------


class Recorder:
    """A transport handler that records requests and answers from a queue (default: 200 {})."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self.answers = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else httpx.Response(200, json={})

    def calls(self) -> list[tuple[str, str, Any]]:
        return [(r.method, r.url.path, json.loads(r.content) if r.content else None) for r in self.requests]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_zendesk_creates_then_updates_one_article() -> None:
    created = {"article": {"id": 42, "html_url": "https://acme.zendesk.test/hc/en-us/articles/42"}}
    recorder = Recorder(httpx.Response(201, json=created))
    channel = zendesk(recorder, permission_group_id=1501)
    first, second, last = (
        make_message(),
        make_message(status="identified", update_number=2),
        make_message(status="resolved", update_number=3),
    )

    published = await channel.publish(first, channel.render(first), {})
    assert published.provider_id == "42"
    assert published.url == "https://acme.zendesk.test/hc/en-us/articles/42"
    assert published.thread is not None
    thread = dict(published.thread)
    thread = dict((await channel.publish(second, channel.render(second), thread)).thread or {})
    thread = dict((await channel.publish(last, channel.render(last), thread)).thread or {})
    await channel.aclose()

    calls = recorder.calls()
    assert [(method, path) for method, path, _ in calls] == [
        ("POST", "/api/v2/help_center/sections/360001/articles.json"),
        ("PUT", "/api/v2/help_center/articles/42/translations/en-us.json"),
        ("PUT", "/api/v2/help_center/articles/42/translations/en-us.json"),
        ("PUT", "/api/v2/help_center/articles/42.json"),
    ]
    assert calls[0][2] == {
        "article": {
            "title": channel.render(first)["title"],
            "body": channel.render(first)["body_html"],
            "locale": "en-us",
            "user_segment_id": None,
            "permission_group_id": 1501,
            "label_names": ["incident", "broadcaster"],
        }
    }
    assert calls[1][2] == {
        "translation": {"title": channel.render(second)["title"], "body": channel.render(second)["body_html"]}
    }
    assert calls[3][2] == {"article": {"label_names": ["incident", "broadcaster", "resolved"]}}
    assert all(r.headers["authorization"] == basic("agent@example.com/token", ZD_TOKEN) for r in recorder.requests)
    assert thread == {
        "article_id": "42",
        "url": "https://acme.zendesk.test/hc/en-us/articles/42",
        "locale": "en-us",
        "labels": ["incident", "broadcaster", "resolved"],
        "update_number": 3,
    }


async def test_zendesk_omits_permission_group_when_not_configured() -> None:
    recorder = Recorder(httpx.Response(201, json={"article": {"id": 7}}))
    channel = zendesk(recorder)
    message = make_message()
    await channel.publish(message, channel.render(message), {})
    await channel.aclose()
    assert "permission_group_id" not in recorder.calls()[0][2]["article"]


async def test_freshdesk_creates_then_updates_one_article() -> None:
    recorder = Recorder(httpx.Response(201, json={"id": 73000100001, "title": "x"}))
    channel = freshdesk(recorder)
    first, last = make_message(), make_message(status="resolved", update_number=2)

    published = await channel.publish(first, channel.render(first), {})
    assert published.thread == {
        "article_id": "73000100001",
        "url": "https://acme.freshdesk.test/a/solutions/articles/73000100001",
        "update_number": 1,
    }
    final = await channel.publish(last, channel.render(last), published.thread)
    await channel.aclose()

    calls = recorder.calls()
    assert [(method, path) for method, path, _ in calls] == [
        ("POST", "/api/v2/solutions/folders/73000012/articles"),
        ("PUT", "/api/v2/solutions/articles/73000100001"),
    ]
    assert calls[0][2] == {
        "title": channel.render(first)["title"],
        "description": channel.render(first)["body_html"],
        "status": 2,
        "tags": ["incident", "broadcaster"],
    }
    assert calls[1][2]["tags"] == ["incident", "broadcaster", "resolved"]
    assert calls[1][2]["title"].startswith("[RESOLVED]")
    assert final.provider_id == "73000100001"
    assert all(r.headers["authorization"] == basic(FD_KEY, "X") for r in recorder.requests)


@pytest.mark.parametrize(
    ("build", "gone", "created"),
    [
        (
            zendesk,
            httpx.Response(404, json={"error": "RecordNotFound", "description": "Not found"}),
            httpx.Response(201, json={"article": {"id": 99}}),
        ),
        (freshdesk, httpx.Response(404), httpx.Response(201, json={"id": 99})),
    ],
    ids=["zendesk", "freshdesk"],
)
async def test_a_vanished_article_is_created_again(
    build: Callable[[Handler], KnowledgeBase], gone: httpx.Response, created: httpx.Response
) -> None:
    recorder = Recorder(gone, created)
    channel = build(recorder)
    message = make_message(status="identified", update_number=2)
    published = await channel.publish(message, channel.render(message), {"article_id": "42", "update_number": 1})
    await channel.aclose()
    assert [method for method, _, _ in recorder.calls()] == ["PUT", "POST"]
    assert published.provider_id == "99"
    assert published.thread is not None and published.thread["article_id"] == "99"


async def test_an_update_older_than_the_article_is_not_written(channel: KnowledgeBase) -> None:
    message = make_message(status="identified", update_number=2)
    thread = {"article_id": "42", "url": "https://kb.test/42", "update_number": 3}
    published = await channel.publish(message, channel.render(message), thread)
    assert published.provider_id == "42"
    assert published.thread is None  # keep the newer state


# -- errors -----------------------------------------------------------------------------


def answer(status: int, headers: dict[str, str] | None = None, body: Any = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, json=body if body is not None else {})

    return handler


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


ERROR_CASES: list[tuple[str, Handler, type[Exception], float | None, str]] = [
    # (case, transport, error class, retry_after_s, in reason)
    ("429 with Retry-After", answer(429, {"Retry-After": "7"}), RateLimited, 7.0, "answered 429"),
    ("500", answer(500, body={"error": "InternalError"}), RetryableError, None, "answered 500"),
    ("503 with Retry-After", answer(503, {"Retry-After": "30"}), RetryableError, 30.0, "answered 503"),
    ("timeout", raising(httpx.ReadTimeout("slow")), RetryableError, None, "timed out"),
    ("connection refused", raising(httpx.ConnectError("refused")), RetryableError, None, "unreachable on"),
    (
        "401",
        answer(401, body={"error": "Couldn't authenticate you"}),
        PermanentError,
        None,
        "credentials need attention",
    ),
    (
        "403",
        answer(403, body={"code": "access_denied", "message": "You are not authorized"}),
        PermanentError,
        None,
        "credentials need attention",
    ),
    (
        "400 Zendesk shape",
        answer(400, body={"title": "Invalid attribute", "message": "You must provide x."}),
        PermanentError,
        None,
        "Invalid attribute; You must provide x.",
    ),
    (
        "400 Zendesk details",
        answer(
            400,
            body={
                "error": "RecordInvalid",
                "details": {"title": [{"description": "Title: cannot be blank", "error": "BlankValue"}]},
            },
        ),
        PermanentError,
        None,
        "RecordInvalid; title: Title: cannot be blank",
    ),
    (
        "400 Freshdesk shape",
        answer(
            400,
            body={
                "description": "Validation failed",
                "errors": [
                    {"field": "status", "message": "It should be one of these values: '1,2'", "code": "invalid_value"}
                ],
            },
        ),
        PermanentError,
        None,
        "Validation failed; status: It should be one of these values: '1,2' (invalid_value)",
    ),
    ("413", answer(413), PermanentError, None, "answered 413"),
]


PROVIDER_SHAPES = {"400 Zendesk shape": zendesk, "400 Zendesk details": zendesk, "400 Freshdesk shape": freshdesk}


@pytest.mark.parametrize(
    ("build", "handler", "error", "retry_after_s", "reason"),
    [
        pytest.param(build, *case[1:], id=f"{case[0]}-{build.__name__}")
        for case in ERROR_CASES
        for build in (zendesk, freshdesk)
        if PROVIDER_SHAPES.get(case[0], build) is build
    ],
)
async def test_provider_errors_are_translated(
    build: Callable[[Handler], KnowledgeBase],
    handler: Handler,
    error: type[Exception],
    retry_after_s: float | None,
    reason: str,
) -> None:
    channel = build(handler)
    message = make_message()
    with pytest.raises(error) as caught:
        await channel.publish(message, channel.render(message), {})
    await channel.aclose()
    assert type(caught.value) is error or (error is PermanentError and isinstance(caught.value, PermanentError))
    assert getattr(caught.value, "retry_after_s", None) == retry_after_s
    assert reason in str(caught.value)
    assert ZD_TOKEN not in str(caught.value) and FD_KEY not in str(caught.value)


REASON_CASES: list[tuple[str, httpx.Response, str]] = [
    # (case, answer, the reason after "answered STATUS to ACTION: ")
    ("no JSON", httpx.Response(502, text="<html>\n  Bad gateway\n</html>"), "<html> Bad gateway </html>"),
    ("empty", httpx.Response(502), "Bad Gateway"),
    ("JSON but not an object", httpx.Response(400, json=["odd"]), "['odd']"),
    ("an object that says nothing", httpx.Response(400, json={"other": 1}), "Bad Request"),
    ("long", httpx.Response(400, text="x" * 500), "x" * 300),
]


@pytest.mark.parametrize("module", [zendesk_module, freshdesk_module], ids=["zendesk", "freshdesk"])
@pytest.mark.parametrize(("response", "reason"), [pytest.param(*case[1:], id=case[0]) for case in REASON_CASES])
def test_error_reasons_fall_back_to_the_answer(module: Any, response: httpx.Response, reason: str) -> None:
    error = module.translate_error(response, "PUT /a/1")
    assert error.reason == f"{module.translate_error.provider} answered {response.status_code} to PUT /a/1: {reason}"


@pytest.mark.parametrize("module", [zendesk_module, freshdesk_module], ids=["zendesk", "freshdesk"])
def test_a_404_means_the_article_is_gone(module: Any) -> None:
    error = module.translate_error(httpx.Response(404, json={"message": "nope"}), "PUT /a/1")
    assert type(error) is ArticleGone
    assert "nope" in error.reason


# -- settings ---------------------------------------------------------------------------

NO_KB: dict[str, Any] = dict(
    zendesk_base_url=None,
    zendesk_email=None,
    zendesk_api_token=None,
    zendesk_section_id=None,
    freshdesk_base_url=None,
    freshdesk_api_key=None,
    freshdesk_folder_id=None,
)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **{**NO_KB, **values})  # type: ignore[call-arg]


ZD_SETTINGS = dict(
    zendesk_base_url="https://acme.zendesk.com",
    zendesk_email="agent@example.com",
    zendesk_api_token=ZD_TOKEN,
    zendesk_section_id="360001",
)
FD_SETTINGS = dict(
    freshdesk_base_url="https://acme.freshdesk.com", freshdesk_api_key=FD_KEY, freshdesk_folder_id="73000012"
)


@pytest.mark.parametrize(
    ("cls", "full"), [(ZendeskChannel, ZD_SETTINGS), (FreshdeskChannel, FD_SETTINGS)], ids=["zendesk", "freshdesk"]
)
async def test_enabled_only_when_fully_configured(cls: type[KnowledgeBase], full: dict[str, str]) -> None:
    assert cls.from_settings(settings(), ChannelContext()) is None
    built = cls.from_settings(settings(**full), ChannelContext())
    assert isinstance(built, cls)
    assert ZD_TOKEN not in repr(built) and FD_KEY not in repr(built)
    await built.aclose()
    first, *rest = full
    with pytest.raises(ConfigError) as caught:
        cls.from_settings(settings(**{first: full[first]}), ChannelContext())
    for name in rest:
        assert f"BROADCASTER_{name.upper()}" in str(caught.value)


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (ZendeskChannel, {**ZD_SETTINGS, "zendesk_section_id": "support"}),
        (ZendeskChannel, {**ZD_SETTINGS, "zendesk_base_url": "acme.zendesk.com"}),
        (FreshdeskChannel, {**FD_SETTINGS, "freshdesk_folder_id": "folder"}),
        (FreshdeskChannel, {**FD_SETTINGS, "freshdesk_base_url": "ftp://acme"}),
    ],
)
def test_bad_settings_fail_early(cls: type[KnowledgeBase], values: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        cls.from_settings(settings(**values), ChannelContext())
