"""Progress of a long import: a bar redrawn in place on a terminal, one line per kind otherwise."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

BAR_WIDTH = 30


class Progress(Protocol):
    """Told what is under way: ``begin(step, total)`` (total None when unknown), ``advance``, ``end``."""

    def begin(self, step: str, total: int | None = None) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def end(self) -> None: ...


class Silent:
    """Progress for callers that show none (the console, tests)."""

    def begin(self, step: str, total: int | None = None) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def end(self) -> None:
        pass


class Lines:
    """One line per step when it ends (``fetched incidents: 32``): for logs and pipes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step = ""
        self.done = 0

    def begin(self, step: str, total: int | None = None) -> None:
        self.step, self.done = step, 0

    def advance(self, count: int = 1) -> None:
        self.done += count

    def end(self) -> None:
        print(f"{self.step}: {self.done}", file=self.out, flush=True)


class Bar(Lines):
    """A bar redrawn in place (``\\r``), then left as the step's line."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        self.total: int | None = None

    def begin(self, step: str, total: int | None = None) -> None:
        super().begin(step, total)
        self.total = total
        self._draw()

    def advance(self, count: int = 1) -> None:
        super().advance(count)
        self._draw()

    def end(self) -> None:
        self._draw()
        self.out.write("\n")
        self.out.flush()

    def _draw(self) -> None:
        if self.total:
            filled = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
            bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total}"
        else:
            bar = f"{self.done}"
        self.out.write(f"\r{self.step:<24} {bar}")
        self.out.flush()


def for_stream(out: TextIO = sys.stderr) -> Progress:
    """A bar when ``out`` is a terminal, lines otherwise."""
    return Bar(out) if out.isatty() else Lines(out)
