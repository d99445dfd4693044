"""Recurring maintenance windows: which rules are accepted, and when the next window starts."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.domain import recurrence
from broadcaster.errors import InputError

UTC_ZONE = recurrence.page_zone("Etc/UTC")
SUNDAY_2AM = datetime(2030, 1, 6, 2, tzinfo=UTC)


def test_a_rule_is_normalized() -> None:
    assert recurrence.normalize(" rrule:freq=weekly;byday=su ") == "FREQ=WEEKLY;BYDAY=SU"


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "FREQ=SOMETIMES",
        "FREQ=MINUTELY",
        "FREQ=WEEKLY;BYSETPOS=1",
        "FREQ=WEEKLY;FREQ=DAILY",
        "FREQ=DAILY;BYMONTHDAY=30",
        "FREQ=WEEKLY\nRRULE:FREQ=DAILY",
        "DTSTART:20300101T000000Z",
        "FREQ=WEEKLY;UNTIL=20310101",  # dateutil: UNTIL must be UTC with a zoned start
        "FREQ=WEEKLY;INTERVAL=x",
    ],
)
def test_bad_rules_name_the_field(rule: str) -> None:
    with pytest.raises(InputError) as caught:
        recurrence.check(rule, SUNDAY_2AM, SUNDAY_2AM + timedelta(hours=1), UTC_ZONE)
    assert set(caught.value.fields) == {"rrule"}


def test_a_window_may_not_overlap_the_next() -> None:
    with pytest.raises(InputError, match="recurrence"):
        recurrence.check("FREQ=DAILY", SUNDAY_2AM, SUNDAY_2AM + timedelta(days=2), UTC_ZONE)
    assert recurrence.check("FREQ=DAILY", SUNDAY_2AM, SUNDAY_2AM + timedelta(hours=2), UTC_ZONE) == "FREQ=DAILY"


def test_an_impossible_date_is_ruled_out_quickly() -> None:
    started = time.monotonic()
    rule = recurrence.check("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", SUNDAY_2AM, None, UTC_ZONE)
    assert recurrence.next_start(rule, SUNDAY_2AM, SUNDAY_2AM, timedelta(0), SUNDAY_2AM, UTC_ZONE) is None
    assert time.monotonic() - started < 3


def test_next_start_follows_the_page_time_zone_across_daylight_saving() -> None:
    paris = recurrence.page_zone("Europe/Paris")
    march = datetime(2030, 3, 24, 9, tzinfo=UTC)  # 10:00 in Paris, winter time
    following = recurrence.next_start("FREQ=WEEKLY", march, march, timedelta(hours=1), march, paris)
    assert following == datetime(2030, 3, 31, 8, tzinfo=UTC)  # 10:00 in Paris, summer time


def test_windows_that_passed_meanwhile_are_skipped() -> None:
    now = SUNDAY_2AM + timedelta(days=15)  # two windows missed while nothing ran
    following = recurrence.next_start("FREQ=WEEKLY", SUNDAY_2AM, SUNDAY_2AM, timedelta(hours=1), now, UTC_ZONE)
    assert following == SUNDAY_2AM + timedelta(days=21)
    assert (
        recurrence.next_start("FREQ=WEEKLY;COUNT=1", SUNDAY_2AM, SUNDAY_2AM, timedelta(0), SUNDAY_2AM, UTC_ZONE) is None
    )


def test_an_unknown_zone_falls_back_to_utc() -> None:
    assert recurrence.page_zone("Nowhere/Special").key == "UTC"
