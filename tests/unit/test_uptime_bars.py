"""The uptime bars: runs of days with nothing to say drawn as one element each, every day counted."""

from __future__ import annotations

import re
from datetime import date, timedelta

from broadcaster.views.uptime import WINDOW_DAYS, Day, Uptime
from status_page.public.html import _run_rules, uptime_view


def _days(levels: list[tuple[float | None, str | None]]) -> Uptime:
    start = date(2026, 9, 1)
    return Uptime(tuple(Day(start + timedelta(days=i), up, worst) for i, (up, worst) in enumerate(levels)), 99.0)


def test_runs_merge_only_days_alike_and_keep_every_day() -> None:
    levels: list[tuple[float | None, str | None]] = [(None, None)] * 80  # before the component existed
    levels += [(1.0, "operational")] * 5 + [(0.7, "partial_outage")] + [(1.0, "operational")] * 3
    levels += [(1.0, "degraded_performance")]
    view = uptime_view(_days(levels), "API")
    assert view is not None
    bars = view["bars"]
    assert [b["class"] for b in bars] == ["u-1 run n80", "run n5", "u3", "run n3", "u2"]
    assert sum(b["span"] for b in bars) == len(levels) == WINDOW_DAYS
    assert bars[2]["title"].startswith("2026-11-25: ") and "uptime" in bars[2]["title"]
    assert [bool(b["title"]) for b in bars] == [False, False, True, False, True]  # degraded: said, though up


def test_every_run_length_has_its_rule() -> None:
    css = _run_rules().decode()
    assert set(map(int, re.findall(r"i\.n(\d+)\{flex-grow:(?:\d+);--n:\1\}", css))) == set(range(2, WINDOW_DAYS + 1))
    assert ".bars i.run{background-image:repeating-linear-gradient(" in css
