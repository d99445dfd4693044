"""``broadcaster import statuspage|cachet`` and ``broadcaster subscribers export|import``.

Imports print their report (created / updated / unchanged / skipped with why, per kind) and
exit 0; a source that cannot be read is one ``error:`` line and exit 1 (no traceback, never
the key). Progress goes to standard error: a bar on a terminal, a line per step otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from broadcaster.actors import Actor
from broadcaster.commands import command
from broadcaster.config import Settings
from broadcaster.errors import InputError
from broadcaster.importing.model import Bundle
from broadcaster.importing.progress import Progress, for_stream
from broadcaster.importing.statuspage import API_URL


def _import_args(parser: argparse.ArgumentParser) -> None:
    sources = parser.add_subparsers(dest="source", required=True, metavar="{statuspage,cachet}")
    sp = sources.add_parser("statuspage", help="Atlassian Statuspage: REST API v1, or a public page's /api/v2")
    sp.add_argument("--page-id", help="the page's id (Statuspage: Your page > API info)")
    sp.add_argument("--api-key", help="a Statuspage API key; '-' reads it from standard input")
    sp.add_argument("--base-url", default=API_URL, help=f"the API's address (default {API_URL})")
    sp.add_argument("--from-public", metavar="URL", help="instead: a public page's /api/v2 (no key needed)")
    sp.add_argument("--dry-run", action="store_true", help="write nothing; print the same report")
    cp = sources.add_parser("cachet", help="Cachet 2.x (/api/v1) or 3.x (/api)")
    cp.add_argument("--url", required=True, help="the Cachet page, e.g. https://status.example.com")
    cp.add_argument("--token", help="an API token (needed for subscribers); '-' reads it from standard input")
    cp.add_argument("--api", choices=["auto", "2", "3"], default="auto", help="Cachet's API (default: ask)")
    cp.add_argument("--time-zone", default="UTC", help="Cachet's APP_TIMEZONE: its times carry no zone (default UTC)")
    cp.add_argument("--dry-run", action="store_true", help="write nothing; print the same report")


def _secret(value: str | None) -> str | None:
    return sys.stdin.readline().strip() if value == "-" else value


async def _fetch(args: argparse.Namespace, settings: Settings, progress: Progress) -> Bundle:
    from broadcaster.importing import sources

    timeout_s = settings.http_timeout_s
    if args.source == "cachet":
        return await sources.from_cachet(
            args.url, _secret(args.token), progress, api=args.api, zone=args.time_zone, timeout_s=timeout_s
        )
    if args.from_public:
        return await sources.from_public_page(args.from_public, progress, timeout_s=timeout_s)
    missing = {
        f"--{name}": "required (or give --from-public URL)"
        for name in ("page-id", "api-key")
        if not getattr(args, name.replace("-", "_"))
    }
    if missing:
        raise InputError("a Statuspage import needs the page and a key", missing)
    return await sources.from_statuspage(
        args.page_id, _secret(args.api_key) or "", progress, base_url=args.base_url, timeout_s=timeout_s
    )


@command("import", "import components, history and subscribers from Statuspage or Cachet", _import_args)
def import_command(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.importing.fetch import SourceError
    from broadcaster.importing.writer import write_bundle
    from broadcaster.jobs import page_copies
    from broadcaster.runtime import Runtime

    async def run() -> list[str]:
        progress = for_stream(sys.stderr)
        bundle = await _fetch(args, settings, progress)
        rt = Runtime.build(settings)
        try:
            actor, dry_run = str(Actor.cli()), args.dry_run
            report = await write_bundle(rt.engine, bundle, settings, actor=actor, dry_run=dry_run, progress=progress)
            if not args.dry_run:  # live pages re-read: components and history, and the page's name
                await rt.bus.publish("components", {"import": bundle.source})
                await page_copies.page_changed(rt, "page", {"import": bundle.source})
        finally:
            await rt.aclose()
        return report.lines()

    try:
        lines = asyncio.run(run())
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _subscribers_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["export", "import"])
    parser.add_argument("file", help="the CSV file to write (export) or read (import); '-' for stdout/stdin")
    parser.add_argument("--confirmed", action="store_true", help="import: every row confirmed (opted in elsewhere)")
    parser.add_argument("--dry-run", action="store_true", help="import: check the file and say what would change")


@command("subscribers", "export or import subscribers as CSV (channel,address,components,...)", _subscribers_args)
def subscribers_command(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.db import make_engine
    from broadcaster.domain import audit
    from broadcaster.importing.subscribers_csv import CsvRejected, apply_csv, export_csv, plan_csv, rejected

    text = ""
    if args.action == "import":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8-sig")

    async def run() -> tuple[str, str | None]:
        """(what to say, the CSV to write for an export)."""
        engine = make_engine(settings.database_url)
        actor = str(Actor.cli())
        try:
            if args.action == "export":
                async with engine.begin() as conn:
                    body, rows = await export_csv(conn)
                    await audit.record(conn, actor, "subscribers.export", rows=rows)
                return f"wrote {rows} subscribers to {args.file}", body
            async with engine.begin() as conn:
                plan = await plan_csv(
                    conn,
                    text,
                    confirmed=args.confirmed,
                    allow_private_webhooks=settings.webhook_allow_private,
                    languages=settings.languages,
                )
                if plan.errors:
                    raise rejected(plan)
                if args.dry_run:
                    counts = plan.counts()
                else:
                    counts = await apply_csv(conn, plan, allow_private_webhooks=settings.webhook_allow_private)
                    await audit.record(conn, actor, "subscribers.import", counts=counts)
            summary = ", ".join(f"{n} {action}" for action, n in counts.items())
            return f"{'would import' if args.dry_run else 'imported'} {len(plan.rows)} rows: {summary}", None
        finally:
            await engine.dispose()

    try:
        said, body = asyncio.run(run())
    except CsvRejected as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for where, why in exc.fields.items():
            print(f"  {where}: {why}", file=sys.stderr)
        return 2
    if body is not None and args.file == "-":
        sys.stdout.write(body)  # the file itself: nothing else on standard output
        return 0
    if body is not None:
        Path(args.file).write_text(body, encoding="utf-8")
    print(said)
    return 0
