"""``broadcaster channels check``: every configured channel's pre-flight check, as a table.

One line per enabled channel: its name, ``ok`` / ``FAIL`` / ``skipped``, what was verified
(or the provider's reason), and when. Exit status 0 when every channel that has a check
passed it, 1 when any failed. The run is the worker cron's: results are stored, and the
commanders hear of a new failure once (``broadcaster.delivery.preflight``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from broadcaster.commands import command
from broadcaster.config import Settings


def _channels_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"], help="check: verify each channel's account, posting nothing")
    parser.add_argument("--cached", action="store_true", help="print the last stored results instead of checking now")


def table(rows: Sequence[tuple[str, str, str, str]]) -> list[str]:
    """``rows`` as aligned lines under a header (the last column is left ragged)."""
    lines = [("channel", "ok", "reason or detail", "checked at"), *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)) + "  " + line[3]
        for line in lines
    ]


@command("channels", "verify each configured channel's account without posting (exit 1 if any fails)", _channels_args)
def channels(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.delivery import preflight
    from broadcaster.runtime import Runtime

    async def run() -> list[preflight.ChannelCheck]:
        rt = Runtime.build(settings)
        try:
            return await (preflight.stored(rt) if args.cached else preflight.run(rt))
        finally:
            await rt.aclose()

    checks = asyncio.run(run())
    rows = []
    for check in checks:
        state = "skipped" if check.skipped else {True: "ok", False: "FAIL", None: "unknown"}[check.ok]
        words = check.detail if check.ok else check.reason
        when = check.checked_at.strftime("%Y-%m-%d %H:%M:%S UTC") if check.checked_at else "-"
        rows.append((check.channel, state, words or "-", when))
    print("\n".join(table(rows)))
    return 0 if preflight.all_ok(checks) else 1
