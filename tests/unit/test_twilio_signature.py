"""X-Twilio-Signature against the vectors Twilio's helper libraries pin."""

from __future__ import annotations

import pytest

from broadcaster.twilio_signature import is_valid, signature

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
DOCUMENTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        (URL, PARAMS, DOCUMENTED),
        (URL, list(reversed(PARAMS.items())), DOCUMENTED),  # order of the body does not matter
        # A repeated name: each distinct value once, sorted.
        (
            URL,
            [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")],
            "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        ),
    ],
)
def test_documented_vectors(url: str, params: object, expected: str) -> None:
    assert signature(TOKEN, url, params) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "url", "params", "sent"),
    [
        ("54321", URL, PARAMS, DOCUMENTED),
        (TOKEN, URL + "&extra=1", PARAMS, DOCUMENTED),
        (TOKEN, URL, {**PARAMS, "Digits": "9999"}, DOCUMENTED),
        (TOKEN, URL, PARAMS, ""),
        (TOKEN, URL, PARAMS, None),
        (TOKEN, URL, PARAMS, "not base64 ✗"),
    ],
)
def test_anything_else_is_refused(token: str, url: str, params: dict[str, str], sent: str | None) -> None:
    assert not is_valid(token, url, params, sent)


def test_valid() -> None:
    assert is_valid(TOKEN, URL, PARAMS, DOCUMENTED)
