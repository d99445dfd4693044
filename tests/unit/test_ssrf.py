"""broadcaster/ssrf.py: the one policy for URLs someone else chose (webhook receivers)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from broadcaster.ssrf import refuse_private, refuse_private_literal

REFUSED = "resolves to a private or loopback address"

LITERAL_CASES: list[tuple[str, str | None]] = [
    # (URL, part of the refusal or None)
    ("https://127.0.0.1/hook", f"127.0.0.1 {REFUSED}"),
    ("https://[::1]:8443/hook", f"::1 {REFUSED}"),
    ("https://[::ffff:10.0.0.1]/hook", REFUSED),
    ("https://169.254.169.254/latest/meta-data", REFUSED),
    ("https://0.0.0.0/hook", REFUSED),
    ("https:///hook", "the URL has no host"),
    ("https://93.184.216.34/hook", None),
    ("https://example.com/hook", None),  # a name: left to the resolving check
]


@pytest.mark.parametrize(("url", "refusal"), LITERAL_CASES)
def test_refuse_private_literal(url: str, refusal: str | None) -> None:
    reason = refuse_private_literal(url)
    assert reason is None if refusal is None else refusal in str(reason)


@pytest.mark.parametrize(("url", "refusal"), LITERAL_CASES)
async def test_refuse_private_agrees_on_addresses(
    url: str, refusal: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _resolving_to("93.184.216.34"))
    reason = await refuse_private(url)
    assert reason is None if refusal is None else refusal in str(reason)


async def test_a_name_is_refused_for_what_it_resolves_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _resolving_to("93.184.216.34", "10.1.2.3"))
    assert await refuse_private("https://rebound.example/hook") == f"refused: rebound.example {REFUSED}"


async def test_localhost_is_refused() -> None:
    assert await refuse_private("https://localhost/hook") == f"refused: localhost {REFUSED}"


@pytest.mark.parametrize("error", [socket.gaierror(socket.EAI_NONAME, "unknown"), UnicodeError("label empty")])
async def test_an_unresolvable_name_is_left_to_the_request(error: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    assert await refuse_private("https://nowhere.invalid/hook") is None


def _resolving_to(*addresses: str) -> Any:
    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0)) for address in addresses]

    return getaddrinfo
