"""``broadcaster mirror push`` and ``broadcaster mirror status``: the page's copies, by hand.

``push`` sends every object of the page to every target of each enabled page copy (the
``mirror`` channel), changed or not: after a target was emptied or replaced, or to check a new
one. It takes the same lock as the workers' pushes, so it never races them. Exit status 1 when
a target refused or could not be reached, 2 when no copy is configured. ``status`` prints each
target's last successful push and lag, as ``GET /api/v1/channels`` shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from broadcaster.commands import command
from broadcaster.config import Settings


def _mirror_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=["push", "status"], help="push: send every object now; status: the last pushes"
    )


@command("mirror", "push the status mirror to its targets now, or show how its pushes went", _mirror_args)
def mirror(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.errors import DeliveryError
    from broadcaster.jobs.page_copies import page_copies
    from broadcaster.runtime import Runtime

    async def run() -> int:
        rt = Runtime.build(settings)
        try:
            copies = page_copies(rt)
            if not copies:
                print(
                    "error: no mirror is configured (set BROADCASTER_MIRROR_S3_BUCKET or BROADCASTER_MIRROR_DIR)",
                    file=sys.stderr,
                )
                return 2
            status = 0
            for name, copy in copies.items():
                if args.action == "status":
                    print(json.dumps({name: dict(await copy.copy_state())}, indent=2))
                    continue
                try:
                    print(await copy.refresh(full=True))
                except DeliveryError as exc:
                    print(f"error: {name}: {exc.reason}", file=sys.stderr)
                    status = 1
            return status
        finally:
            await rt.aclose()

    return asyncio.run(run())
