"""The pre-flight check: learn that a channel's account is broken before the crisis, not during it.

``run(rt)`` calls ``check()`` on every enabled channel that is ``Checkable`` (email, SMS,
Mastodon, Zendesk, Freshdesk, ...), all at once, each within ``channel_check_timeout_s``; it
posts nothing public. A channel without a check is *skipped*: a webhook's or a chat
channel's endpoints belong to its subscribers. Each outcome replaces the channel's row in
``channel_checks``.

When a channel goes from passing (or never checked) to failing, the commanders and admins
with an email address or phone hear about it **once** (one notice per run naming every
channel that started failing, ``DeliveryKind.PREFLIGHT`` through ``direct.notify_users``,
never through a channel that is failing itself), and the log gets one WARNING. A channel
that keeps failing is not announced again until it has passed and failed anew: the claim
on ``notified_at`` is a guarded UPDATE, so two runs at once never both notify.

``stored(rt)`` reads the last results without checking (the console, ``?cached=1``), with
each channel's last successful delivery; ``failing(rt)`` is what the console's banner shows.
Run by ``broadcaster channels check``, ``GET /api/v1/channels/health`` and the worker's
``preflight`` cron (every ``channel_check_interval_minutes``).
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, case, func, null, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.db import channel_checks, deliveries, utcnow
from broadcaster.delivery import direct
from broadcaster.delivery.channel import Channel, Checkable, DirectMessage
from broadcaster.errors import DeliveryError
from broadcaster.jobs.reminders import team
from broadcaster.models import DeliveryKind, DeliveryState
from broadcaster.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    """One enabled channel's pre-flight state: skipped, never checked (``ok`` None), passing or failing."""

    channel: str
    title: str
    skipped: bool = False
    ok: bool | None = None
    reason: str | None = None  # the provider's reason, when failing
    detail: str | None = None  # what was verified, when passing
    checked_at: datetime | None = None
    failing_since: datetime | None = None
    last_delivered_at: datetime | None = None  # the channel's latest successful delivery, any kind

    @property
    def failing(self) -> bool:
        return self.ok is False


def all_ok(checks: Iterable[ChannelCheck]) -> bool:
    """Whether every channel that has a check passed its last one (skipped channels do not count)."""
    return all(check.ok for check in checks if not check.skipped)


@dataclass(frozen=True, slots=True)
class _Outcome:
    channel: str
    ok: bool
    text: str  # the detail when ok, the reason when not


async def _check(name: str, channel: Checkable, timeout_s: float) -> _Outcome:
    try:
        detail = await asyncio.wait_for(channel.check(), timeout_s)
    except DeliveryError as exc:
        return _Outcome(name, False, exc.reason)
    except TimeoutError:
        return _Outcome(name, False, f"no answer within {timeout_s:g} s")
    except Exception as exc:  # a bug in one channel's check must not hide the other channels' results
        log.exception("the pre-flight check of %s raised", name)
        return _Outcome(name, False, f"the check itself failed ({type(exc).__name__})")
    return _Outcome(name, True, detail)


async def run(rt: Runtime) -> list[ChannelCheck]:
    """Check every enabled channel now, store the results, tell the commanders of new failures.

    Returns every enabled channel's state, in the registry's order, skipped ones included.
    """
    enabled = rt.registry.enabled
    timeout_s = rt.settings.channel_check_timeout_s
    outcomes = await asyncio.gather(
        *(_check(name, channel, timeout_s) for name, channel in enabled.items() if isinstance(channel, Checkable))
    )
    now = utcnow()
    async with rt.engine.begin() as conn:
        before = {
            row.channel: row.ok for row in await conn.execute(select(channel_checks.c.channel, channel_checks.c.ok))
        }
        started = [outcome for outcome in outcomes if await _record(conn, outcome, now)]
        members = await team(conn) if started else []
    for outcome in outcomes:
        if outcome.ok and before.get(outcome.channel) is False:
            log.info("channel %s passes its pre-flight check again: %s", outcome.channel, outcome.text)
    for outcome in started:
        log.warning("channel %s fails its pre-flight check: %s", outcome.channel, outcome.text)
    log.debug(
        "pre-flight: %d passed, %d failed, %d skipped",
        sum(o.ok for o in outcomes),
        sum(not o.ok for o in outcomes),
        len(enabled) - len(outcomes),
    )
    checks = await stored(rt)
    if started:
        await _notify(rt, checks, {o.channel for o in started}, members)
    return checks


def _upsert(conn: AsyncConnection, outcome: _Outcome, now: datetime) -> Any:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    row = channel_checks.c  # inside ON CONFLICT DO UPDATE: the stored row
    insert = dialect_insert(channel_checks).values(
        channel=outcome.channel,
        ok=outcome.ok,
        reason=None if outcome.ok else outcome.text,
        detail=outcome.text if outcome.ok else None,
        checked_at=now,
        failing_since=None if outcome.ok else now,
        notified_at=None,
    )
    changes: dict[str, Any] = {
        "ok": insert.excluded.ok,
        "reason": insert.excluded.reason,
        "detail": insert.excluded.detail,
        "checked_at": insert.excluded.checked_at,
    }
    if outcome.ok:
        changes |= {"failing_since": null(), "notified_at": null()}
    else:  # a failure that goes on keeps its start and its notice
        going_on = row.ok.is_(False)
        changes |= {
            "failing_since": case((going_on, row.failing_since), else_=insert.excluded.failing_since),
            "notified_at": case((going_on, row.notified_at), else_=null()),
        }
    return insert.on_conflict_do_update(index_elements=[row.channel], set_=changes)


async def _record(conn: AsyncConnection, outcome: _Outcome, now: datetime) -> bool:
    """Store ``outcome``; True when it is a new failure this run claimed the notice of."""
    await conn.execute(_upsert(conn, outcome, now))
    if outcome.ok:
        return False
    claimed = await conn.execute(
        channel_checks.update()
        .where(
            channel_checks.c.channel == outcome.channel,
            channel_checks.c.ok.is_(False),
            channel_checks.c.notified_at.is_(None),
        )
        .values(notified_at=now)
    )
    return bool(claimed.rowcount)


def notice(failures: Sequence[ChannelCheck], public_url: str) -> DirectMessage:
    """The commanders' message about channels that started failing their pre-flight check."""
    names = ", ".join(check.title for check in failures)
    page = f"{public_url}/console/channels"
    lines = [f"{check.title} fails its pre-flight check: {check.reason}" for check in failures]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return DirectMessage(
        subject=f"[Pre-flight] {names} failing",
        text="\n".join(lines) + f"\n\nFix it before the next incident needs it. Every channel's last check: {page}",
        html=f"<ul>{items}</ul><p>Fix it before the next incident needs it. "
        f'<a href="{html.escape(page)}">Every channel\'s last check</a></p>',
        short=f"Pre-flight check failing: {names}. {page}",
    )


async def _notify(
    rt: Runtime, checks: Sequence[ChannelCheck], started: set[str], members: list[dict[str, Any]]
) -> None:
    broken = {check.channel for check in checks if check.failing}
    working: Mapping[str, Channel] = {n: c for n, c in rt.registry.enabled.items() if n not in broken}
    message = notice([check for check in checks if check.channel in started], rt.settings.public_url)
    sent = await direct.notify_users(rt.engine, working, DeliveryKind.PREFLIGHT, members, message)
    if not sent["email"] and not sent["sms"]:
        log.warning(
            "no commander or admin could be told of the failed pre-flight check of %s", ", ".join(sorted(started))
        )


async def last_delivered(conn: AsyncConnection) -> dict[str, datetime]:
    """Each channel's latest successful delivery (updates and one-off messages alike)."""
    result = await conn.execute(
        select(deliveries.c.channel, func.max(deliveries.c.sent_at))
        .where(deliveries.c.state == DeliveryState.SENT.value)
        .group_by(deliveries.c.channel)
    )
    return {channel: sent_at for channel, sent_at in result.tuples() if sent_at is not None}


def _state(name: str, channel: Channel, row: RowMapping | None, delivered: datetime | None) -> ChannelCheck:
    title = type(channel).title
    if not isinstance(channel, Checkable):
        return ChannelCheck(name, title, skipped=True, last_delivered_at=delivered)
    if row is None:
        return ChannelCheck(name, title, last_delivered_at=delivered)
    return ChannelCheck(
        name,
        title,
        ok=bool(row["ok"]),
        reason=row["reason"],
        detail=row["detail"],
        checked_at=row["checked_at"],
        failing_since=row["failing_since"],
        last_delivered_at=delivered,
    )


async def stored(rt: Runtime) -> list[ChannelCheck]:
    """Every enabled channel's last check as stored (none is run), with its last successful delivery."""
    async with rt.engine.connect() as conn:
        rows = {row["channel"]: row for row in (await conn.execute(select(channel_checks))).mappings()}
        delivered = await last_delivered(conn)
    return [_state(n, c, rows.get(n), delivered.get(n)) for n, c in rt.registry.enabled.items()]


async def failing(rt: Runtime) -> list[ChannelCheck]:
    """The enabled channels whose last check failed, oldest failure first (one small read, for banners)."""
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(channel_checks).where(channel_checks.c.ok.is_(False)).order_by(channel_checks.c.failing_since)
            )
        ).mappings()
        enabled = rt.registry.enabled
        states = [
            _state(row["channel"], enabled[row["channel"]], row, None) for row in rows if row["channel"] in enabled
        ]
    return [state for state in states if state.failing]


async def preflight_job(ctx: dict[str, Any]) -> int:
    """arq cron entry: check every channel; returns how many fail."""
    runtime: Runtime = ctx["runtime"]
    return sum(check.failing for check in await run(runtime))
