"""``channels.slack``: Block Kit that Slack (and ``slack_sdk``) accepts, Slack's answers as delivery errors."""

from __future__ import annotations

import json

import httpx
import pytest

from broadcaster.errors import PermanentError, RateLimited, RetryableError
from channels.base import Recipient, ReplyTargetGone, Sent
from channels.slack import MAX_BLOCKS, SECTION_MAX, SlackChannel, render_message, sections, slack_error
from sandbox.providers.slack import block_problem, message_problem
from tests.support.chat import chat_messages, slack_blocks_problems

MESSAGES = chat_messages()


@pytest.mark.parametrize("case", list(MESSAGES))
def test_every_message_is_block_kit_slack_accepts(case: str) -> None:
    rendition = render_message(MESSAGES[case])
    blocks = rendition["blocks"]
    assert slack_blocks_problems(blocks) == []
    assert block_problem(blocks) is None and message_problem(rendition) is None  # the local Slack agrees
    assert blocks[0]["type"] == "header" and blocks[-1]["type"] == "actions"
    assert rendition["text"].endswith(MESSAGES[case].public_url)


def test_a_long_update_is_split_into_sections_and_cut_at_fifty_blocks() -> None:
    blocks = render_message(MESSAGES["long"])["blocks"]
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(blocks) == MAX_BLOCKS
    assert all(len(text) <= SECTION_MAX for text in texts)
    assert texts[0].startswith("Paragraph 0: we *still* see errors on &lt;checkout&gt; &amp; retries.")
    assert texts[-1] == "_… the full update is on the status page._"


def test_the_validators_refuse_what_slack_refuses() -> None:
    """Both checks can fail: over 50 blocks, and a section over 3000 characters."""
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    assert slack_blocks_problems([section] * 51) and block_problem([section] * 51)
    long = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    assert slack_blocks_problems([long]) and block_problem([long])


def test_sections_split_between_paragraphs_then_words() -> None:
    assert sections("a\n\nb", 10) == ["a\n\nb"]
    assert sections("aaaa\n\nbbbb", 6) == ["aaaa", "bbbb"]
    assert sections("one two three", 7) == ["one", "two", "three"]


@pytest.mark.parametrize(
    ("method", "error", "kind"),
    [
        ("chat.postMessage", "invalid_auth", PermanentError),
        ("chat.postMessage", "channel_not_found", PermanentError),
        ("chat.postMessage", "ratelimited", RateLimited),
        ("chat.postMessage", "internal_error", RetryableError),
        ("chat.update", "message_not_found", ReplyTargetGone),
        ("chat.postMessage", "message_not_found", PermanentError),
    ],
)
def test_slack_errors(method: str, error: str, kind: type[Exception]) -> None:
    found = slack_error(method, error)
    assert type(found) is kind
    assert error in found.reason
    if error == "invalid_auth":
        assert found.reason.startswith("credentials need attention")


async def test_a_webhook_gets_the_rendition_and_a_404_disables_the_subscriber() -> None:
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        if request.url.path.endswith("/gone"):
            return httpx.Response(404, text="no_service")
        return httpx.Response(200, text="ok")

    channel = SlackChannel(transport=httpx.MockTransport(handler))
    message = MESSAGES["first"]
    rendition = channel.render(message)
    hooks = ["https://hooks.slack.test/services/T/B/live", "https://hooks.slack.test/services/T/B/gone"]
    recipients = [Recipient(delivery_id=n, subscriber_id=f"s{n}", address=url) for n, url in enumerate(hooks)]
    try:
        outcomes = await channel.deliver(message, rendition, recipients, {})
    finally:
        await channel.aclose()
    assert [json.loads(r.content) for r in received] == [rendition, rendition]
    assert isinstance(outcomes[0], Sent)
    gone = outcomes[1]
    assert isinstance(gone, PermanentError) and gone.suppress_recipient
    assert "404: no_service" in gone.reason and "gone" not in hooks[0]  # the URL itself is never in a reason
    assert "hooks.slack.test" not in gone.reason
