"""Write one ``Bundle`` in one transaction: components, history, subscribers, the id mapping and an audit row.

Subscribers come in confirmed (they opted in at the source) through
``domain.subscribers.upsert_subscriber``, which sends nothing: no confirmation mail or
code, and they get the next incident posted here. An address that unsubscribed here, or
bounced, is never subscribed again by an import. ``dry_run`` writes it all and rolls it
back, so its report is the real one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcaster.config import Settings
from broadcaster.db import subscribers
from broadcaster.domain import audit
from broadcaster.domain.page_brand import BRAND_ID, BrandPatch, load_brand, save_brand
from broadcaster.domain.subscribers import normalize_address, upsert_subscriber
from broadcaster.errors import InputError
from broadcaster.importing.components import write_components
from broadcaster.importing.history import write_history
from broadcaster.importing.mapping import PAGE, SUBSCRIBER, SourceMap
from broadcaster.importing.model import Bundle, Kind, SourceSubscriber, fingerprint
from broadcaster.importing.progress import Progress, Silent
from broadcaster.importing.report import Report
from broadcaster.importing.timeline import Timeline
from broadcaster.schemas import SubscriberIn

Row = dict[str, Any]


class _DryRun(Exception):
    """Raised to roll the dry run's transaction back."""


def _reason(exc: InputError) -> str:
    return "; ".join(f"{field}: {why}" for field, why in exc.fields.items()) or exc.message


async def write_bundle(
    engine: AsyncEngine,
    bundle: Bundle,
    settings: Settings,
    *,
    actor: str,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Write ``bundle`` (or, with ``dry_run``, write and roll back); the report either way."""
    progress = progress or Silent()
    report = Report(bundle.label, dry_run=dry_run)
    for skip in bundle.skipped:
        report.skipped(skip.kind, skip.source_id, skip.why)
    try:
        async with engine.begin() as conn:
            known = await SourceMap.load(conn, bundle.source)
            await _page(conn, bundle, known, report)
            timeline = Timeline()
            ids = await write_components(conn, bundle, known, timeline, report, progress)
            await write_history(conn, bundle, known, ids, timeline, report, progress)
            await timeline.flush(conn)
            await _write_subscribers(conn, bundle, known, ids, settings, report, progress)
            await known.flush(conn)
            action = f"import.{bundle.source.partition(':')[0]}"
            await audit.record(conn, actor, action, target=bundle.source, counts=report.counts(), dry_run=dry_run)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


async def _page(conn: AsyncConnection, bundle: Bundle, known: SourceMap, report: Report) -> None:
    """The source's page name becomes the brand's, unless this page was named here (then that stays)."""
    name = (bundle.page_name or "").strip()
    if not name:
        return
    digest = fingerprint(name)
    entry = known.get(PAGE, "name")
    current = (await load_brand(conn)).name
    if current == name or (entry is not None and entry.fingerprint == digest):
        report.unchanged(Kind.PAGE)  # the same, or renamed here since: the name chosen here stays
    elif entry is None and current:
        report.skipped(Kind.PAGE, repr(name), f"this page is already named {current!r} here: kept")
    else:
        try:
            await save_brand(conn, BrandPatch(name=name[:255]))
        except InputError as exc:
            report.skipped(Kind.PAGE, repr(name), _reason(exc))
            return
        (report.created if current is None else report.updated)(Kind.PAGE)
    known.remember(PAGE, "name", BRAND_ID, digest)


async def _write_subscribers(
    conn: AsyncConnection,
    bundle: Bundle,
    known: SourceMap,
    ids: dict[str, str],
    settings: Settings,
    report: Report,
    progress: Progress,
) -> None:
    progress.begin("writing subscribers", len(bundle.subscribers))
    result = await conn.execute(select(subscribers).where(subscribers.c.drill.is_(False)))
    here: dict[tuple[str, str], Row] = {(r["channel"], r["address"]): dict(r) for r in result.mappings()}
    for item in bundle.subscribers:
        progress.advance()
        why = await _write_subscriber(conn, item, here, known, ids, settings, report)
        if why:
            report.skipped(Kind.SUBSCRIBERS, item.source_id, why)
    progress.end()


async def _write_subscriber(
    conn: AsyncConnection,
    item: SourceSubscriber,
    here: dict[tuple[str, str], Row],
    known: SourceMap,
    ids: dict[str, str],
    settings: Settings,
    report: Report,
) -> str | None:
    """Write one subscriber (``here``: this page's, by channel and address); the reason when it is skipped."""
    digest = fingerprint(item)
    entry = known.get(SUBSCRIBER, item.source_id)
    component_ids = [ids[c] for c in item.component_ids if c in ids]
    if item.component_ids and not component_ids:
        return "none of the components it follows came along"
    try:
        data = SubscriberIn(channel=item.channel, address=item.address, components=component_ids, confirmed=True)
        address = normalize_address(data.channel, data.address, settings.webhook_allow_private)
    except InputError as exc:
        return _reason(exc)
    existing = here.get((data.channel, address))
    if existing is not None and (existing["unsubscribed_at"] is not None or existing["suppressed_reason"]):
        return "unsubscribed here (or the address bounced): not subscribed again"
    if existing is not None and entry is not None and entry.local_id == existing["id"] and entry.fingerprint == digest:
        report.unchanged(Kind.SUBSCRIBERS)
        return None
    try:
        row, created = await upsert_subscriber(conn, data, allow_private_webhooks=settings.webhook_allow_private)
    except InputError as exc:
        return _reason(exc)
    if created:
        if item.created_at is not None:  # their own time: they joined then, and confirmed then
            await conn.execute(
                subscribers.update()
                .where(subscribers.c.id == row["id"])
                .values(created_at=item.created_at, confirmed_at=item.created_at)
            )
        report.created(Kind.SUBSCRIBERS)
    else:
        report.updated(Kind.SUBSCRIBERS)
    here[(row["channel"], row["address"])] = row
    known.remember(SUBSCRIBER, item.source_id, row["id"], digest)
    return None
