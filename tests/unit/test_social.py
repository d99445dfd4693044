"""The social channels (Mastodon, Bluesky, X): length rules, rendering, requests, errors.

The three share one template and one shortening rule but count length their own way;
provider answers are faked at the transport seam.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grapheme
import httpx
import pytest

from broadcaster.config import Settings
from broadcaster.errors import ConfigError, DeliveryError, PermanentError, RateLimited, RetryableError
from broadcaster.message import ELLIPSIS, first_sentence, one_line
from channels._social import URL, last_post_id, next_thread, reply_or_start
from channels.base import BroadcastChannel, ChannelContext, ReplyTargetGone
from channels.bluesky import BlueskyChannel, link_facets
from channels.mastodon import MastodonChannel, idempotency_key
from channels.x import XChannel, weighted_length
from sandbox.providers import mastodon as fake_mastodon
from sandbox.providers import x as fake_x
from tests.support.factories import make_message

Handler = Callable[[httpx.Request], httpx.Response]
Social = MastodonChannel | BlueskyChannel | XChannel
LINK = "https://status.example.com/incidents/inc000000001"
SESSION = {"accessJwt": "acc", "refreshJwt": "ref", "did": "did:plc:abc", "handle": "status.example.com"}


def mastodon(handler: Handler) -> MastodonChannel:
    return MastodonChannel("https://social.example", "tok", transport=httpx.MockTransport(handler))


def bluesky(handler: Handler) -> BlueskyChannel:
    def with_session(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("createSession"):
            return httpx.Response(200, json=SESSION)
        return handler(request)

    return BlueskyChannel("status.example.com", "pw", transport=httpx.MockTransport(with_session))


def x(handler: Handler) -> XChannel:
    return XChannel("tok", transport=httpx.MockTransport(handler))


BUILDERS: dict[str, Callable[[Handler], Social]] = {"mastodon": mastodon, "bluesky": bluesky, "x": x}


def platform_length(name: str, text: str) -> int:
    """Each platform's count, as its own (fake) server reckons it."""
    if name == "mastodon":
        return fake_mastodon.countable_length(text)
    if name == "x":
        return fake_x.weighted_length(text)
    return int(grapheme.length(text))


# -- length rules -------------------------------------------------------------------------

X_LENGTH_CASES = [
    # (text, weighted length) from twitter-text v3's rules
    ("hello", 5),
    ("café", 4),
    ("cafe\u0301", 4),  # NFC first
    ("Привет", 6),
    ("日本語", 6),
    ("한국어", 6),
    ("…", 2),
    ("“quoted”", 8),
    ("😷", 2),
    ("👨\u200d👩\u200d👧\u200d👦", 2),
    ("👍🏽", 2),
    ("🇯🇵", 2),
    ("❤️", 2),
    ("1️⃣", 2),
    (f"See {LINK}", 4 + 23),
    (f"See {LINK}.", 4 + 23 + 1),
    ("https://a.example/" + "x" * 100, 23),
    ("down on api.example.com now", 8 + 23 + 4),  # X may link a bare domain: count it as a URL
    ("e.g. this", 9),
]


@pytest.mark.parametrize(("text", "expected"), X_LENGTH_CASES)
def test_x_weighted_length(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("hello", 5), ("👩\u200d💻 fix", 5), (f"{LINK}", 23), (f"a {'https://x.example/' + 'p' * 80} b", 27)],
)
def test_mastodon_counts_graphemes_and_urls_as_23(text: str, expected: int) -> None:
    assert fake_mastodon.countable_length(text) == expected
    channel = mastodon(lambda r: httpx.Response(500))
    assert channel.render(make_message(incident_title=text, body_text=""))["length"] == platform_length(
        "mastodon", f"[Investigating] {text} {LINK}"
    )


@pytest.mark.parametrize("prefix", ["plain ", "日本語 ", "👨\u200d👩\u200d👧 family ", "café — "])
def test_bluesky_link_facet_covers_the_exact_bytes(prefix: str) -> None:
    text = f"{prefix}{LINK}"
    [facet] = link_facets(text, LINK)
    index = facet["index"]
    assert text.encode()[index["byteStart"] : index["byteEnd"]] == LINK.encode()
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": LINK}]


# -- render -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_render_first_update(name: str) -> None:
    channel = BUILDERS[name](lambda r: httpx.Response(500))
    rendition = channel.render(make_message())
    text = "[Investigating] Elevated API error rates: We are investigating elevated error rates on the API. "
    assert rendition == {
        "text": text + LINK,
        "length": platform_length(name, text + LINK),
        "limit": {"mastodon": 500, "bluesky": 300, "x": 280}[name],
        "reply_to": None,
    }


LONG_TITLE = " ".join(
    ["🔥 Checkout", "and", "payments", "failing", "for", "customers", "in", "東京", "and", "the", "EU", "🇪🇺"] * 8
)[:400]
assert len(LONG_TITLE) == 400


@pytest.mark.parametrize("name", BUILDERS)
@pytest.mark.parametrize(
    "overrides",
    [
        {"incident_title": LONG_TITLE},
        {"incident_title": "Short title 👩\u200d💻", "body_text": "Word " * 120 + "end. Second sentence."},
        {"incident_title": "Résumé ✅", "body_text": "日本語のテキスト " * 40},
        {"incident_title": LONG_TITLE, "drill": True, "status": "identified"},
    ],
    ids=["400-char title", "long sentence", "cjk sentence", "drill"],
)
def test_long_input_stays_within_each_limit(name: str, overrides: dict[str, Any]) -> None:
    message = make_message(**overrides)
    rendition = BUILDERS[name](lambda r: httpx.Response(500)).render(message)
    text = rendition["text"]
    assert platform_length(name, text) <= rendition["limit"]
    assert rendition["length"] == platform_length(name, text)
    assert text.endswith(" " + LINK)
    body = text.removesuffix(" " + LINK)
    drill = "DRILL " if message.drill else ""
    full = one_line(f"{drill}[{message.status_label}] {message.incident_title}: {first_sentence(message.body_text)}")
    if body != full:  # cut after a whole word, then the ellipsis
        assert body.endswith(ELLIPSIS)
        words = full.split(" ")
        prefixes = {" ".join(words[:k]).rstrip(" ,;:-") for k in range(1, len(words))}
        assert body.removesuffix(ELLIPSIS) in prefixes


# -- requests -----------------------------------------------------------------------------


async def test_mastodon_request_and_threading() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": f"{len(seen)}0", "url": f"https://social.example/@s/{len(seen)}0"})

    channel = mastodon(handler)
    first, second = make_message(), make_message(update_id="upd2", update_number=2, status="identified")
    published = await channel.publish(first, channel.render(first), {})
    assert published.thread == {"root_id": "10", "last_id": "10"}
    published = await channel.publish(second, channel.render(second), published.thread or {})
    assert published.thread == {"root_id": "10", "last_id": "20"}
    await channel.aclose()

    bodies = [json.loads(r.content) for r in seen]
    assert [r.url.path for r in seen] == ["/api/v1/statuses"] * 2
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert [r.headers["idempotency-key"] for r in seen] == [idempotency_key(first), idempotency_key(second)]
    assert idempotency_key(first) != idempotency_key(second)
    assert "in_reply_to_id" not in bodies[0] and bodies[1]["in_reply_to_id"] == "10"
    assert bodies[0]["visibility"] == "public"


async def test_x_request_and_threading() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(201, json={"data": {"id": str(100 + len(seen)), "text": "..."}})

    channel = x(handler)
    msg = make_message()
    one = await channel.publish(msg, channel.render(msg), {})
    two = await channel.publish(msg, channel.render(msg), one.thread or {})
    await channel.aclose()
    assert seen[0] == {"text": channel.render(msg)["text"]}
    assert seen[1]["reply"] == {"in_reply_to_tweet_id": "101"}
    assert two.thread == {"root_id": "101", "last_id": "102"} and two.url == "https://x.com/i/status/102"


async def test_bluesky_record_and_reply_refs() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("getRecord"):
            return httpx.Response(200, json={"uri": "at://did:plc:abc/app.bsky.feed.post/k1", "cid": "bafynew"})
        seen.append(json.loads(request.content))
        assert request.headers["authorization"] == "Bearer acc"
        return httpx.Response(200, json={"uri": f"at://did:plc:abc/app.bsky.feed.post/k{len(seen)}", "cid": "c"})

    channel = bluesky(handler)
    msg = make_message()
    one = await channel.publish(msg, channel.render(msg), {})
    two = await channel.publish(msg, channel.render(msg), one.thread or {})
    await channel.aclose()
    first = seen[0]
    assert first["repo"] == "did:plc:abc" and first["collection"] == "app.bsky.feed.post"
    record = first["record"]
    assert record["$type"] == "app.bsky.feed.post" and record["langs"] == ["en"]
    assert record["createdAt"].endswith("Z")
    assert abs(datetime.fromisoformat(record["createdAt"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert "reply" not in record
    root = {"uri": "at://did:plc:abc/app.bsky.feed.post/k1", "cid": "c"}
    assert seen[1]["record"]["reply"] == {"root": root, "parent": {**root, "cid": "bafynew"}}
    assert two.thread == {"root": root, "last": {"uri": "at://did:plc:abc/app.bsky.feed.post/k2", "cid": "c"}}
    assert two.url == "https://bsky.app/profile/did:plc:abc/post/k2"


REPLY_GONE = "The post you are trying to reply to does not appear to exist."
TWEET_GONE = "You attempted to reply to a Tweet that is deleted or not visible to you."
BSKY_ROOT = {"uri": "at://did:plc:abc/app.bsky.feed.post/r", "cid": "c0"}


@pytest.mark.parametrize(
    ("name", "gone"),
    [
        ("mastodon", httpx.Response(404, json={"error": REPLY_GONE})),
        ("mastodon", httpx.Response(422, json={"error": "Validation failed: In reply to is invalid"})),
        ("x", httpx.Response(403, json={"title": "Forbidden", "detail": TWEET_GONE})),
        ("x", httpx.Response(400, json={"errors": [{"message": "$.reply.in_reply_to_tweet_id: is invalid"}]})),
        ("bluesky", httpx.Response(400, json={"error": "RecordNotFound", "message": "Could not locate record"})),
    ],
)
async def test_missing_parent_starts_a_new_thread(name: str, gone: httpx.Response) -> None:
    replies: list[bool] = []
    made = {"id": "77", "url": "u", "data": {"id": "77"}, "uri": "at://did:plc:abc/app.bsky.feed.post/n", "cid": "c"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("getRecord"):
            return gone
        body = json.loads(request.content)
        replying = bool(body.get("in_reply_to_id") or body.get("reply") or body.get("record", {}).get("reply"))
        replies.append(replying)
        return gone if replying else httpx.Response(201, json=made)

    channel = BUILDERS[name](handler)
    thread = {"root": BSKY_ROOT, "last": BSKY_ROOT} if name == "bluesky" else {"root_id": "5", "last_id": "6"}
    msg = make_message(update_number=3)
    published = await channel.publish(msg, channel.render(msg), thread)
    await channel.aclose()
    assert replies[-1] is False
    new = published.provider_id
    if name == "bluesky":
        assert published.thread == {"root": {"uri": new, "cid": "c"}, "last": {"uri": new, "cid": "c"}}
    else:
        assert published.thread == {"root_id": new, "last_id": new}


async def test_a_404_on_a_top_level_post_is_permanent() -> None:
    # A 404 on a top-level post means a wrong base URL, not a deleted parent: no loop, no retry.
    channel = mastodon(lambda r: httpx.Response(404, json={"error": "Record not found"}))
    msg = make_message()
    with pytest.raises(PermanentError, match="mastodon answered 404"):
        await channel.publish(msg, channel.render(msg), {})
    await channel.aclose()


# -- the shared helpers (channels/_social.py) ------------------------------------------------

REPLY_CASES: list[tuple[str, str | None, set[str], list[str | None], tuple[str, bool]]] = [
    # (case, parent, parents that are gone, calls made, (result, replied))
    ("no parent", None, set(), [None], ("new", False)),
    ("parent there", "p1", set(), ["p1"], ("reply to p1", True)),
    ("parent gone", "p1", {"p1"}, ["p1", None], ("new", False)),
]


@pytest.mark.parametrize(("parent", "gone", "calls", "result"), [pytest.param(*c[1:], id=c[0]) for c in REPLY_CASES])
async def test_reply_or_start(
    parent: str | None, gone: set[str], calls: list[str | None], result: tuple[str, bool]
) -> None:
    made: list[str | None] = []

    async def post(reply_to: str | None) -> str:
        made.append(reply_to)
        if reply_to in gone:
            raise ReplyTargetGone(f"{reply_to} is gone")
        return f"reply to {reply_to}" if reply_to else "new"

    assert await reply_or_start(post, parent) == result
    assert made == calls


async def test_reply_or_start_lets_other_errors_through() -> None:
    async def post(reply_to: str | None) -> str:
        raise RateLimited("slow down", 5.0)

    with pytest.raises(RateLimited):
        await reply_or_start(post, "p1")


def test_next_thread_keeps_the_root_of_a_reply() -> None:
    assert next_thread({"root_id": "r", "last_id": "p"}, "n", replied=True) == {"root_id": "r", "last_id": "n"}
    assert next_thread({"last_id": "p"}, "n", replied=True) == {"root_id": "p", "last_id": "n"}
    assert next_thread({"root_id": "r", "last_id": "p"}, "n", replied=False) == {"root_id": "n", "last_id": "n"}
    assert last_post_id({"last_id": 17}) == "17" and last_post_id({}) is None


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("See https://a.test/x.", ["https://a.test/x"]),
        ("(https://a.test/x?y=1), then http://b.test!", ["https://a.test/x?y=1", "http://b.test"]),
        ("no link at ftp://a.test", []),
    ],
)
def test_url_pattern_leaves_out_the_sentence_punctuation(text: str, urls: list[str]) -> None:
    assert URL.findall(text) == urls


# -- error translation ---------------------------------------------------------------------

CREDENTIALS = "credentials need attention:"


def answer(status: int, body: dict[str, Any] | str | None = None, **headers: str) -> httpx.Response:
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def at(value: str) -> str:
    """Resolve ``epoch+N`` / ``iso+N`` (N seconds from now) when the request is made."""
    kind, _, seconds = value.partition("+")
    if kind == "epoch":
        return str(int(time.time()) + int(seconds))
    if kind == "iso":
        return (datetime.now(UTC) + timedelta(seconds=int(seconds))).isoformat()
    return value


def problem(detail: str) -> dict[str, Any]:
    return {"title": "Forbidden", "detail": detail}


ERROR_CASES: list[tuple[str, httpx.Response | type[Exception], type[DeliveryError], str, float | None]] = [
    # (platform, answer, error class, reason starts with, retry_after_s)
    (
        "mastodon",
        answer(429, {"error": "Too many requests"}, Retry_After="12"),
        RateLimited,
        "mastodon answered 429",
        12.0,
    ),
    ("mastodon", answer(429, X_RateLimit_Reset="iso+90"), RateLimited, "mastodon", 90.0),
    ("mastodon", answer(503, "down"), RetryableError, "mastodon answered 503: down", None),
    (
        "mastodon",
        answer(401, {"error": "The access token is invalid"}),
        PermanentError,
        f"{CREDENTIALS} mastodon",
        None,
    ),
    ("mastodon", answer(403, {"error": "This action is not allowed"}), PermanentError, CREDENTIALS, None),
    (
        "mastodon",
        answer(422, {"error": "Validation failed: Text character limit of 500 exceeded"}),
        PermanentError,
        "mastodon answered 422: Validation failed",
        None,
    ),
    ("mastodon", httpx.ReadTimeout, RetryableError, "mastodon timed out", None),
    ("mastodon", httpx.ConnectError, RetryableError, "mastodon unreachable", None),
    ("x", answer(429, x_rate_limit_reset="epoch+120"), RateLimited, "X answered 429", 120.0),
    ("x", answer(429, Retry_After="7", x_rate_limit_reset="epoch+900"), RateLimited, "X", 7.0),
    (
        "x",
        answer(500, {"title": "Internal Server Error"}),
        RetryableError,
        "X answered 500: Internal Server Error",
        None,
    ),
    ("x", answer(401, {"title": "Unauthorized", "detail": "Unauthorized"}), PermanentError, f"{CREDENTIALS} X", None),
    ("x", answer(403, problem("You are not permitted to perform this action.")), PermanentError, CREDENTIALS, None),
    (
        "x",
        answer(403, problem("You are not allowed to create a Tweet with duplicate content.")),
        PermanentError,
        "X answered 403: You are not allowed",
        None,
    ),
    (
        "x",
        answer(400, {"detail": "One or more parameters to your request was invalid.", "errors": [{"message": "long"}]}),
        PermanentError,
        "X answered 400: One or more parameters to your request was invalid.; long",
        None,
    ),
    ("x", httpx.ConnectTimeout, RetryableError, "X timed out", None),
    (
        "bluesky",
        answer(429, {"error": "RateLimitExceeded"}, ratelimit_reset="epoch+60"),
        RateLimited,
        "bluesky answered 429 RateLimitExceeded",
        60.0,
    ),
    ("bluesky", answer(502, "bad gateway"), RetryableError, "bluesky answered 502", None),
    (
        "bluesky",
        answer(401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}),
        PermanentError,
        f"{CREDENTIALS} bluesky answered 401 AuthenticationRequired",
        None,
    ),
    ("bluesky", answer(400, {"error": "AccountTakedown", "message": "taken down"}), PermanentError, CREDENTIALS, None),
    (
        "bluesky",
        answer(400, {"error": "InvalidRequest", "message": "Record/text must not be longer than 300 graphemes"}),
        PermanentError,
        "bluesky answered 400 InvalidRequest: Record/text",
        None,
    ),
    ("bluesky", httpx.ReadTimeout, RetryableError, "bluesky timed out", None),
]


@pytest.mark.parametrize(("name", "answer", "error", "reason", "retry_after_s"), ERROR_CASES)
async def test_provider_answers_become_delivery_errors(
    name: str,
    answer: httpx.Response | type[Exception],
    error: type[DeliveryError],
    reason: str,
    retry_after_s: float | None,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, httpx.Response):
            headers = {name: at(value) for name, value in answer.headers.items()}
            return httpx.Response(answer.status_code, headers=headers, content=answer.content)
        raise answer("boom", request=request)  # type: ignore[call-arg]

    channel = BUILDERS[name](handler)
    msg = make_message()
    with pytest.raises(DeliveryError) as caught:
        await channel.publish(msg, channel.render(msg), {})
    await channel.aclose()
    assert type(caught.value) is error
    assert caught.value.reason.startswith(reason), caught.value.reason
    if retry_after_s is not None:
        assert isinstance(caught.value, RetryableError)
        assert caught.value.retry_after_s == pytest.approx(retry_after_s, abs=3)
    if error is PermanentError and "credentials" not in reason:
        assert not caught.value.reason.startswith("credentials")


async def test_bluesky_bad_app_password_is_a_credentials_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
        )

    channel = BlueskyChannel("status.example.com", "wrong", transport=httpx.MockTransport(handler))
    msg = make_message()
    with pytest.raises(PermanentError, match=r"^credentials need attention: bluesky answered 401"):
        await channel.publish(msg, channel.render(msg), {})
    await channel.aclose()


# -- settings -----------------------------------------------------------------------------


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (MastodonChannel, {"mastodon_base_url": "https://social.example", "mastodon_access_token": "t"}),
        (BlueskyChannel, {"bluesky_handle": "status.example.com", "bluesky_app_password": "p"}),
        (XChannel, {"x_access_token": "t"}),
    ],
)
async def test_enabled_only_when_configured(cls: type[Social], values: dict[str, Any]) -> None:
    assert cls.from_settings(settings(), ChannelContext()) is None
    channel = cls.from_settings(settings(**values), ChannelContext())
    assert isinstance(channel, cls)
    assert isinstance(channel, BroadcastChannel)
    await channel.aclose()
    if len(values) == 2:
        first = dict([next(iter(values.items()))])
        with pytest.raises(ConfigError):
            cls.from_settings(settings(**first), ChannelContext())


def test_bad_settings_fail_early() -> None:
    with pytest.raises(ConfigError, match="visibility"):
        MastodonChannel("https://social.example", "t", visibility="everyone")
    with pytest.raises(ConfigError, match="base URL"):
        MastodonChannel("social.example", "t")
