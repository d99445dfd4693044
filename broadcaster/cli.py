"""The ``broadcaster`` command: serve, worker, migrate, tokens, users, post, demo, up."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from broadcaster import cli_accounts, cli_channels, cli_import, cli_maintenance, cli_mirror, cli_up  # noqa: F401 (register their commands)
from broadcaster.actors import Actor
from broadcaster.commands import COMMANDS, command
from broadcaster.config import Settings, get_settings
from broadcaster.errors import InputError

log = logging.getLogger("broadcaster")


def _refused_to_start(settings: Settings) -> bool:
    """Whether to refuse to start: a guessable ``BROADCASTER_SECRET_KEY`` (one warning line on
    loopback), or sandbox settings behind a page that is not loopback."""
    from broadcaster.errors import ConfigError
    from broadcaster.security import check_sandbox, check_secret_key

    try:
        check_sandbox(settings.sandbox_url, settings.public_url)
        warning = check_secret_key(settings.secret_key.get_secret_value(), settings.public_url)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return True
    if warning:
        log.warning("%s", warning)
    return False


# Live streams end at once on SIGTERM (status_page.live); any other response still open is cut
# off after this long, so a web process is gone within 10 s and a rolling deploy never stalls.
WEB_STOP_S = 8


def _serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="web processes")
    # granian by measurement: bench/status_page.py gives it the better worst-path req/s and p99
    parser.add_argument(
        "--server",
        choices=["uvicorn", "granian"],
        default="granian",
        help="HTTP server (default granian: faster in bench/status_page.py)",
    )


def granian_argv(host: str, port: int, workers: int) -> list[str]:
    """How ``broadcaster serve`` runs granian (``bench/status_page.py`` runs the same).

    RSGI: the cached hot GETs answer through it natively (``status_page.rsgi``), everything else
    is bridged to the ASGI app; no websockets (nothing speaks them).
    """
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "rsgi",
        "--no-ws",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--workers-kill-timeout",
        str(WEB_STOP_S),
        "status_page.app:create_served_app",
    ]


@command("serve", "run the web app (status page, APIs, console)", _serve_args)
def serve(args: argparse.Namespace, settings: Settings) -> int:
    if _refused_to_start(settings):
        return 2
    if args.server == "granian":
        import json
        import tempfile

        from broadcaster.logs import chatty_level, logging_config

        with tempfile.NamedTemporaryFile("w", prefix="broadcaster-log-", suffix=".json", delete=False) as f:
            json.dump(logging_config(settings.log_format, settings.log_level), f)
        # exec: granian takes this process's place, so a container's SIGTERM reaches it.
        argv = granian_argv(args.host, args.port, args.workers)
        # --log-level: granian applies it to its own loggers over the config's
        level = logging.getLevelName(chatty_level(logging.getLevelName(settings.log_level))).lower()
        os.execv(sys.executable, [*argv, "--log-config", f.name, "--log-level", level])
    import uvicorn

    from broadcaster.logs import logging_config

    uvicorn.run(
        "status_page.app:create_served_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=None,  # the levels come from log_config
        proxy_headers=False,  # status_page.client_address decides
        log_config=logging_config(settings.log_format, settings.log_level),
        timeout_graceful_shutdown=WEB_STOP_S,
    )
    return 0


def _worker_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")


@command("worker", "run an arq worker (fan-out, delivery, relay, reminders)", _worker_args)
def worker(args: argparse.Namespace, settings: Settings) -> int:
    if _refused_to_start(settings):
        return 2
    from broadcaster.jobs.worker import make_worker

    loop: asyncio.AbstractEventLoop
    try:  # uvloop (comes with uvicorn[standard]): 10-15% more mails a second (bench/email_fanout.py)
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    make_worker(settings, burst=args.burst).run()
    return 0


@command("migrate", "bring the database schema up to date")
def migrate(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.db.migrate import upgrade

    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def _post_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--incident", help="id of an existing incident (omit to open a new one)")
    parser.add_argument("--title", help="title of a new incident")
    parser.add_argument("--status", default="investigating")
    parser.add_argument("--impact")
    parser.add_argument("--message", required=True, help="markdown; '-' reads standard input")
    parser.add_argument("--component", action="append", default=[], metavar="ID=STATUS")
    parser.add_argument("--channel", action="append", dest="channels", metavar="NAME")
    parser.add_argument("--next-update-in", type=int, dest="next_update_in_minutes", metavar="MINUTES")


@command("post", "post an update from the terminal", _post_args)
def post(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.post_requests import request_from_body
    from broadcaster.posting import post as post_update
    from broadcaster.runtime import Runtime

    message = sys.stdin.read() if args.message == "-" else args.message
    components: dict[str, str] = {}
    for item in args.component:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError("bad --component", {"component": f"{item!r} is not ID=STATUS"})
        components[key] = value
    body: dict[str, Any] = {"status": args.status, "message": message, "components": components}
    for key in ("impact", "channels", "next_update_in_minutes"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if not args.incident:
        body["title"] = args.title
    request = request_from_body(body, args.incident)

    async def run() -> tuple[dict[str, str], bool]:
        rt = Runtime.build(settings)
        try:
            result = await post_update(rt, request, actor=Actor.cli())
        finally:
            await rt.aclose()
        assert result.ref is not None
        return result.ref, result.queued

    ref, queued = asyncio.run(run())
    print(
        f"posted update {ref['update_id']} on incident {ref['incident_id']}"
        + ("" if queued else " (queued for the relay)")
    )
    print(f"{settings.public_url}/incidents/{ref['incident_id']}")
    return 0


def _replay_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--update", required=True, metavar="ID", help="the update whose failed rows to resend")
    parser.add_argument("--channel", required=True, metavar="NAME")
    parser.add_argument("--list", action="store_true", help="only list the dead letters, change nothing")


@command("replay", "resend an update's permanently failed deliveries on one channel", _replay_args)
def replay(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.db import make_engine
    from broadcaster.delivery.deadletter import list_dead
    from broadcaster.delivery.deadletter import replay as replay_rows
    from broadcaster.domain import audit
    from broadcaster.jobs.queue import Queue

    async def run() -> tuple[int, int]:
        engine = make_engine(settings.database_url)
        queue = Queue(settings.redis_url, settings.queue_name)
        try:
            if args.list:
                async with engine.connect() as conn:
                    dead = await list_dead(conn, update_id=args.update, channel=args.channel, limit=1000)
                for row in dead.rows:
                    print(f"{row['id']}\t{row['address'] or row['recipient']}\t{row['attempts']}\t{row['last_error']}")
                return dead.total, 0
            reset, batches = await replay_rows(engine, queue, args.update, args.channel, settings.batch_size)
            async with engine.begin() as conn:
                await audit.record(
                    conn, str(Actor.cli()), "deliveries.retry", target=args.update, channel=args.channel, rows=reset
                )
            return reset, batches
        finally:
            await queue.aclose()
            await engine.dispose()

    count, batches = asyncio.run(run())
    if args.list:
        print(f"{count} failed deliveries")
    else:
        print(
            f"reset {count} failed deliveries of update {args.update} on {args.channel}; "
            f"{batches} batches enqueued" + ("" if batches or not count else " (the relay will enqueue them)")
        )
    return 0


def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="directory to write (created if missing); serve it at a site's root")


@command("export-static", "write the status page as static files (pages, JSON, feeds)", _export_args)
def export_static(args: argparse.Namespace, settings: Settings) -> int:
    """Write the public page into DIR for any static server or bucket.

    The renderer lives in ``status_page``; this is the one place ``broadcaster`` imports it,
    lazily inside the command, so the core still never depends on the web app at import time.
    """
    from pathlib import Path

    from broadcaster.db import make_engine
    from status_page.public.static_export import export_site

    async def run() -> int:
        engine = make_engine(settings.database_url)
        try:
            return await export_site(settings, engine, Path(args.dir))
        finally:
            await engine.dispose()

    count = asyncio.run(run())
    print(f"wrote {count} files to {args.dir}")
    return 0


def _playbooks_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["export", "import"])
    parser.add_argument("file", help="YAML file to write (export) or read (import); '-' for stdout/stdin")


@command("playbooks", "export or import the crisis playbooks and contacts as YAML", _playbooks_args)
def playbooks(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from broadcaster.crisis.playbook_yaml import export_yaml, import_yaml
    from broadcaster.db import make_engine
    from broadcaster.domain import audit

    text = ""
    if args.action == "import":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")

    async def run() -> str:
        engine = make_engine(settings.database_url)
        try:
            if args.action == "export":
                async with engine.connect() as conn:
                    return await export_yaml(conn)
            async with engine.begin() as conn:
                counts = await import_yaml(conn, text)
                await audit.record(conn, str(Actor.cli()), "playbooks.import", counts=counts)
            return f"imported {counts['playbooks']} playbooks, {counts['levels']} levels, {counts['contacts']} contacts"
        finally:
            await engine.dispose()

    result = asyncio.run(run())
    if args.action == "import":
        print(result)
    elif args.file == "-":
        sys.stdout.write(result)
    else:
        Path(args.file).write_text(result, encoding="utf-8")
        print(f"wrote {args.file}")
    return 0


@command("demo", "seed demo components, an incident and an API token")
def demo(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.demo import seed

    for line in asyncio.run(seed(settings)):
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broadcaster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _fn, arguments) in COMMANDS.items():
        arguments(sub.add_parser(name, help=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``broadcaster`` command."""
    from broadcaster.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args, settings)
    except InputError as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        print(f"error: {exc.message}" + (f" ({detail})" if detail else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
