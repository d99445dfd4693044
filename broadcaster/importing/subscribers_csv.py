"""Subscribers as CSV: ``channel,address,components,language,confirmed,created_at``, out and in.

Export writes the real, active subscribers (not the drill audience, not those who
unsubscribed or bounced), oldest first; ``components`` is a ``;``-separated list of
component names ("Group - Component" inside a group), or ids where a name would be
ambiguous; empty means every component. ``language`` is the subscriber's (empty: the page's
default); on import it must be one the page offers (``"FR"`` and ``"fr-CA"`` read as ``fr``),
and an empty cell leaves an existing subscriber's language as it is. No webhook secret is
exported: it is a credential, and an imported webhook gets a new one.

Import is all or nothing: ``plan_csv`` reads and checks every row (a bad row is named by its
line number, with the reason) and says what each would do; ``apply_csv`` refuses a plan with
bad rows and writes the rest through ``domain.subscribers.upsert_subscriber``, which sends no
confirmation. Call both in one transaction.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster import i18n
from broadcaster.db import subscriber_components, subscribers
from broadcaster.domain.components import display_name, list_components
from broadcaster.domain.subscribers import (
    check_webhook_target,
    find_subscriber,
    normalize_address,
    subscriber_component_ids,
    subscriber_language,
    upsert_subscriber,
)
from broadcaster.errors import InputError
from broadcaster.schemas import SubscriberIn

COLUMNS = ("channel", "address", "components", "language", "confirmed", "created_at")
REQUIRED = ("channel", "address")
SEPARATOR = ";"
MAX_ROWS = 100_000
MAX_ERRORS = 200  # bad rows reported at most (the count is always given)
TRUE, FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n", ""}


class Action:
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    KEPT = "kept unsubscribed"  # unsubscribed or bounced here: an import does not subscribe it again


@dataclass(frozen=True)
class RowPlan:
    """What one good row will do."""

    line: int
    data: SubscriberIn
    created_at: datetime | None
    action: str
    labels: tuple[str, ...]  # its components as written in the file


@dataclass
class CsvPlan:
    rows: list[RowPlan] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def counts(self) -> dict[str, int]:
        tally = Counter(r.action for r in self.rows)
        return {a: tally[a] for a in (Action.CREATE, Action.UPDATE, Action.UNCHANGED, Action.KEPT)}


class CsvRejected(InputError):
    """The file has bad rows; ``fields`` maps ``line N`` to the reason. Nothing was written."""


def rejected(plan: CsvPlan) -> CsvRejected:
    shown = dict((f"line {line}", why) for line, why in plan.errors[:MAX_ERRORS])
    return CsvRejected(f"{len(plan.errors)} bad rows; nothing was imported", shown)


class _Components:
    """Component names and ids, both ways: labels for export, resolution for import."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        groups = {r["id"]: r for r in rows if r["is_group"]}
        parts = [r for r in rows if not r["is_group"]]
        self.ids = {r["id"] for r in parts}
        names = Counter(display_name(r, groups) for r in parts)
        bare = Counter(str(r["name"]) for r in parts)
        self.label = {}
        self.by_name: dict[str, list[str]] = {}
        for r in parts:
            full = display_name(r, groups)
            ok = names[full] == 1 and SEPARATOR not in full and full.strip() == full and full not in self.ids
            self.label[r["id"]] = full if ok else r["id"]
            self.by_name.setdefault(full, []).append(r["id"])
            if bare[r["name"]] == 1 and r["name"] != full:
                self.by_name.setdefault(str(r["name"]), []).append(r["id"])
        self.groups = {str(g["name"]): [r["id"] for r in parts if r["group_id"] == g["id"]] for g in groups.values()}

    def resolve(self, token: str) -> list[str]:
        """The ids ``token`` names: an id, a component's name, or a group's (its components)."""
        if token in self.ids:
            return [token]
        found = self.by_name.get(token)
        if found is not None and len(found) > 1:
            raise InputError("ambiguous component", {"components": f"{token!r} names {len(found)} components; use ids"})
        if found is None:
            found = self.groups.get(token)
        if found is None:
            raise InputError("unknown component", {"components": f"no component named {token!r}"})
        return found


async def export_csv(conn: AsyncConnection) -> tuple[str, int]:
    """Every active real subscriber as CSV (header first), and how many rows that is."""
    names = _Components(await list_components(conn))
    active = (
        subscribers.c.drill.is_(False),
        subscribers.c.unsubscribed_at.is_(None),
        subscribers.c.suppressed_reason.is_(None),
    )
    rows = (
        await conn.execute(select(subscribers).where(*active).order_by(subscribers.c.created_at, subscribers.c.id))
    ).mappings()
    links: dict[str, list[str]] = {}
    link_rows = await conn.execute(
        select(subscriber_components.c.subscriber_id, subscriber_components.c.component_id)
        .join(subscribers, subscribers.c.id == subscriber_components.c.subscriber_id)
        .where(*active)
    )
    for subscriber_id, component_id in link_rows:
        links.setdefault(str(subscriber_id), []).append(str(component_id))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        count += 1
        labels = sorted(names.label.get(c, c) for c in links.get(row["id"], []))
        writer.writerow(
            [
                row["channel"],
                row["address"],
                SEPARATOR.join(labels),
                row["language"] or "",
                str(bool(row["confirmed"])).lower(),
                row["created_at"].isoformat().replace("+00:00", "Z"),
            ]
        )
    return out.getvalue(), count


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise InputError("invalid flag", {"confirmed": "must be true or false"})


def _time(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        why = "must be an ISO 8601 time, e.g. 2026-01-31T09:00:00Z"
        raise InputError("invalid time", {"created_at": why}) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _reason(exc: InputError) -> str:
    return "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message


async def plan_csv(
    conn: AsyncConnection,
    text: str,
    *,
    confirmed: bool,
    allow_private_webhooks: bool,
    languages: Sequence[str] | None = None,
) -> CsvPlan:
    """Read and check every row of ``text``; what each good row would do and why each bad one is bad.

    A ``language`` must be one of ``languages`` (the page's; default: every shipped one)."""
    offered = tuple(languages or i18n.shipped_languages())
    plan = CsvPlan()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [h for h in REQUIRED if h not in header]
    if not header or unknown or missing:
        why = f"unknown columns {unknown}" if unknown else f"missing columns {missing or list(REQUIRED)}"
        plan.errors.append((1, f"{why}; the columns are {','.join(COLUMNS)}"))
        return plan
    reader.fieldnames = header
    names = _Components(await list_components(conn))
    seen: dict[tuple[str, str], int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if len(plan.rows) + len(plan.errors) >= MAX_ROWS:
                plan.errors.append((line, f"more than {MAX_ROWS} rows: split the file"))
                break
            cells = {k: (v or "").strip() if isinstance(v, str) else "" for k, v in record.items() if k}
            if None in record:
                plan.errors.append((line, f"more cells than the {len(header)} columns"))
                continue
            if not any(cells.values()):
                continue
            try:
                row = await _plan_row(conn, line, cells, names, confirmed, allow_private_webhooks, offered)
            except InputError as exc:
                plan.errors.append((line, _reason(exc)))
                continue
            key = (row.data.channel, row.data.address)
            if key in seen:
                plan.errors.append((line, f"the same subscriber as line {seen[key]}"))
                continue
            seen[key] = line
            plan.rows.append(row)
    except csv.Error as exc:
        plan.errors.append((reader.line_num, f"not readable as CSV: {exc}"))
    return plan


async def _plan_row(
    conn: AsyncConnection,
    line: int,
    cells: dict[str, str],
    names: _Components,
    confirmed: bool,
    allow_private: bool,
    languages: Sequence[str],
) -> RowPlan:
    labels = tuple(t.strip() for t in cells.get("components", "").split(SEPARATOR) if t.strip())
    component_ids = sorted({cid for token in labels for cid in names.resolve(token)})
    is_confirmed = _flag(cells.get("confirmed", "")) or confirmed  # a bad value is bad even when overridden
    created_at = _time(cells.get("created_at", ""))
    language = subscriber_language(cells.get("language", ""), languages)
    data = SubscriberIn(
        channel=cells["channel"].lower(),
        address=cells["address"],
        components=component_ids,
        confirmed=is_confirmed,
        **({"language": language} if language else {}),  # an empty cell keeps an existing subscriber's
    )
    address = normalize_address(data.channel, data.address, allow_private)
    if data.channel == "webhook":
        await check_webhook_target(address, allow_private)
    data = data.model_copy(update={"address": address})
    existing = await find_subscriber(conn, data.channel, address)
    if existing is None:
        action = Action.CREATE
    elif existing["unsubscribed_at"] is not None or existing["suppressed_reason"]:
        action = Action.KEPT
    else:
        same = await subscriber_component_ids(conn, existing["id"]) == component_ids
        same = same and language in (None, existing["language"])
        action = Action.UNCHANGED if same and (existing["confirmed"] or not is_confirmed) else Action.UPDATE
    return RowPlan(line, data, created_at, action, labels)


async def apply_csv(conn: AsyncConnection, plan: CsvPlan, *, allow_private_webhooks: bool) -> dict[str, int]:
    """Write a plan without bad rows (``CsvRejected`` otherwise); the counts per action."""
    if plan.errors:
        raise rejected(plan)
    for row in plan.rows:
        if row.action not in (Action.CREATE, Action.UPDATE):
            continue
        stored, created = await upsert_subscriber(conn, row.data, allow_private_webhooks=allow_private_webhooks)
        if created and row.created_at is not None:
            values: dict[str, Any] = {"created_at": row.created_at}
            if row.data.confirmed:
                values["confirmed_at"] = row.created_at
            await conn.execute(subscribers.update().where(subscribers.c.id == stored["id"]).values(**values))
    return plan.counts()
