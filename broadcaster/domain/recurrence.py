"""Recurring maintenance windows: an RFC 5545 ``RRULE`` read with python-dateutil's ``rrulestr``.

The rule is evaluated in the page's time zone (``BROADCASTER_TIME_ZONE``), so "every Sunday at
02:00" stays at 02:00 local time across daylight saving changes; its DTSTART is the
maintenance's ``recurrence_start`` (the window the rule was set on). Only the parts that
describe maintenance windows are accepted (no SECONDLY to HOURLY frequencies, no BYSETPOS,
BYWEEKNO or BYYEARDAY): a rule whose dates can never happen is then found in well under a
second, where dateutil would otherwise search until the year 9999.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

from broadcaster.errors import InputError

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTH", "BYMONTHDAY", "BYHOUR", "BYMINUTE")
MONTHLY_OR_LONGER = ("BYMONTHDAY",)  # with a DAILY or WEEKLY rule, "February 30" would take seconds to rule out
FIELD = "rrule"


def _refuse(reason: str) -> InputError:
    return InputError("invalid recurrence rule", {FIELD: reason})


def normalize(text: str) -> str:
    """The rule as ``FREQ=…;…`` (an ``RRULE:`` prefix dropped, upper case); a 422 naming ``rrule`` when not one."""
    rule = text.strip().upper().removeprefix("RRULE:").strip()
    if not rule or any(c in rule for c in "\r\n"):
        raise _refuse("one RRULE line, e.g. FREQ=WEEKLY;BYDAY=SU")
    parts: dict[str, str] = {}
    for item in rule.split(";"):
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise _refuse(f"{item!r} is not NAME=VALUE")
        if name not in PARTS:
            raise _refuse(f"{name} is not supported here; use {', '.join(PARTS)}")
        if name in parts:
            raise _refuse(f"{name} is given twice")
        parts[name] = value
    if parts.get("FREQ") not in FREQUENCIES:
        raise _refuse(f"FREQ must be one of {', '.join(FREQUENCIES)}")
    if parts["FREQ"] in ("DAILY", "WEEKLY") and any(p in parts for p in MONTHLY_OR_LONGER):
        raise _refuse("BYMONTHDAY needs FREQ=MONTHLY or FREQ=YEARLY")
    return ";".join(f"{name}={value}" for name, value in parts.items())


def page_zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _rule(text: str, start: datetime, zone: ZoneInfo) -> Any:
    try:
        return rrulestr(normalize(text), dtstart=start.astimezone(zone))
    except ValueError as exc:  # dateutil's own reason: a bad value, UNTIL not in UTC, ...
        raise _refuse(str(exc)) from None


def _utc(value: Any) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


def check(text: str, start: datetime, until: datetime | None, zone: ZoneInfo) -> str:
    """The normalized rule, after checking it parses and that the next window does not overlap this one."""
    rule = normalize(text)
    following = _utc(_rule(rule, start, zone).after(start.astimezone(zone)))
    if following is not None and until is not None and following < until:
        raise _refuse(f"the next occurrence ({following:%Y-%m-%d %H:%M} UTC) starts before this window ends")
    return rule


def next_start(
    text: str, anchor: datetime, after: datetime, duration: timedelta, now: datetime, zone: ZoneInfo
) -> datetime | None:
    """The start of the next window after the one that began at ``after``; None when the rule has no more.

    A window that would already be over (the worker was down through it) is skipped: the next
    one still to come, or in progress, is the one scheduled.
    """
    rule = _rule(text, anchor, zone)
    return _utc(rule.after(max(after, now - duration).astimezone(zone)))
