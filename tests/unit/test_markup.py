"""``channels._markup``: the sanitized HTML of an update in each chat's own markup."""

from __future__ import annotations

import pytest

from broadcaster.render import markdown_to_html
from channels._markup import DISCORD, GOOGLE_CHAT, SLACK, TEAMS, Dialect, markup

BODY = """We see **elevated errors** on the _checkout_ API: 5% < 10% & rising.

- first, see [the runbook](https://example.com/run?a=1&b=2)
- second: `retry_count`

> quoted **text**

1. one
2. two
"""


def convert(dialect: Dialect, text: str = BODY) -> str:
    return markup(markdown_to_html(text), dialect)


def test_slack_mrkdwn() -> None:
    assert convert(SLACK).split("\n") == [
        "We see *elevated errors* on the _checkout_ API: 5% &lt; 10% &amp; rising.",
        "",
        "• first, see <https://example.com/run?a=1&amp;b=2|the runbook>",
        "• second: `retry_count`",
        "",
        "> quoted *text*",
        "",
        "1. one",
        "2. two",
    ]


def test_discord_markdown_escapes_its_signs() -> None:
    text = markup("<p>Use <strong>2*3</strong> and a_b, or [x](y).</p>", DISCORD)
    assert text == "Use **2\\*3** and a\\_b, or \\[x\\]\\(y\\)."
    assert convert(DISCORD).split("\n")[2] == "• first, see [the runbook](https://example.com/run?a=1&b=2)"


def test_teams_keeps_to_the_card_subset() -> None:
    lines = convert(TEAMS).split("\n")
    assert lines[0] == "We see **elevated errors** on the _checkout_ API: 5% < 10% & rising."
    assert lines[2:4] == ["- first, see [the runbook](https://example.com/run?a=1&b=2)", "- second: retry_count"]
    assert "quoted **text**" in lines and not any(line.startswith(">") for line in lines)


def test_google_chat_html_subset() -> None:
    text = convert(GOOGLE_CHAT)
    assert "\n" not in text
    first = "We see <b>elevated errors</b> on the <i>checkout</i> API: 5% &lt; 10% &amp; rising."
    assert text.startswith(first + "<br><br>")
    assert '• first, see <a href="https://example.com/run?a=1&amp;b=2">the runbook</a><br>' in text


@pytest.mark.parametrize("dialect", [SLACK, DISCORD, TEAMS, GOOGLE_CHAT])
def test_nothing_of_the_text_is_lost(dialect: Dialect) -> None:
    text = convert(dialect, "Line one  \nline two\n\n### Next steps\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n---\n\nEnd.")
    for word in ("Line one", "line two", "Next steps", "a | b", "1 | 2", "End."):
        assert word in text, (word, text)


def test_marks_hug_their_text() -> None:
    # Slack renders *bold* only when the marks touch the words
    assert markup("<p>a<strong> bold </strong>b</p>", SLACK) == "a *bold* b"
    assert markup("<p><em></em>empty</p>", SLACK) == "empty"
