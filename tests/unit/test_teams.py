"""``channels.teams``: Adaptive Cards valid against the Adaptive Card 1.5 schema, in a Workflows message."""

from __future__ import annotations

import copy

import pytest

from channels.teams import BODY_MAX, CARD_CONTENT_TYPE, TeamsChannel, card
from sandbox.providers.teams import card_problem
from tests.support.chat import adaptive_card_problems, chat_messages

MESSAGES = chat_messages()


@pytest.mark.parametrize("case", list(MESSAGES))
def test_every_card_validates_against_the_adaptive_card_schema(case: str) -> None:
    rendition = TeamsChannel().render(MESSAGES[case])
    assert rendition["type"] == "message"
    [attachment] = rendition["attachments"]
    assert attachment["contentType"] == CARD_CONTENT_TYPE
    content = attachment["content"]
    assert adaptive_card_problems(content) == []
    assert card_problem(content) is None  # the local workflow agrees
    assert content["version"] == "1.5" and content["actions"][0]["url"] == MESSAGES[case].public_url


def test_the_schema_is_strict_enough_to_fail() -> None:
    content = card(MESSAGES["first"])
    wrong = copy.deepcopy(content)
    wrong["body"][0]["colour"] = "attention"  # a misspelt property
    assert adaptive_card_problems(wrong)
    wrong = copy.deepcopy(content)
    wrong["body"][2]["facts"][0] = {"title": "API"}  # a fact without its value
    assert adaptive_card_problems(wrong) and card_problem(wrong)


def test_the_card_says_what_the_page_says() -> None:
    body = card(MESSAGES["components"])["body"]
    assert body[0]["text"] == "Investigating: Elevated API error rates" and body[0]["color"] == "attention"
    assert body[1]["text"] == "We are investigating **elevated error rates** on the API. Next update in 30 minutes."
    assert len(body[2]["facts"]) == 40 and body[2]["facts"][0] == {"title": "Region 0 - API", "value": "Major outage"}
    assert card(MESSAGES["resolved"])["body"][0]["color"] == "good"
    assert len(card(MESSAGES["long"])["body"][1]["text"]) <= BODY_MAX
