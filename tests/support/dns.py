"""A resolver the test controls, put where broadcaster looks every host up (``broadcaster.ssrf.resolve``)."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from typing import Any

import pytest

from broadcaster import ssrf

NXDOMAIN = socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class FakeResolver:
    """Answers from a table: an address list, a callable giving one, or an exception to raise.

    A host not in the table does not exist (NXDOMAIN). ``calls`` records every lookup.
    """

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answer = self.answers.get(host, NXDOMAIN)
        if isinstance(answer, BaseException):
            raise answer
        return list(answer() if callable(answer) else answer)


def use_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> FakeResolver:
    resolver = FakeResolver(answers)
    monkeypatch.setattr(ssrf, "resolve", resolver)
    return resolver


def flipping(*answers: str) -> Callable[[], list[str]]:
    """A DNS answer that changes on every lookup (rebinding): each of ``answers`` in turn, forever."""
    turns = itertools.cycle(answers)
    return lambda: [next(turns)]
