"""``python -m sandbox [--host 127.0.0.1] [--port 8025] [--smtp-port 8026]``: run the sandbox.

One process: the HTTP providers and the outbox on ``--port``, the SMTP catcher on
``--smtp-port``. Loopback only. Quiet (errors only); SIGTERM or SIGINT stops it, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys
from types import FrameType

from sandbox.server import Sandbox, make_server, url_host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local servers that play every provider.")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8025, help="HTTP providers and the outbox (default 8025)")
    parser.add_argument("--smtp-port", type=int, default=8026, help="the SMTP catcher (default 8026)")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"--host {args.host} is not loopback: the sandbox listens on 127.0.0.1, ::1 or localhost only")

    sandbox = Sandbox(f"http://{url_host(args.host)}:{args.port}")
    server = make_server(sandbox, args.host, args.port)

    # uvicorn handles the signals while it serves, then raises them again: they land here and
    # stop nothing more, so the process ends with 0. Before it serves, they stop it at once.
    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    with contextlib.ExitStack() as running:
        try:
            running.enter_context(sandbox.smtp(args.host, args.smtp_port))
        except OSError as exc:
            print(f"sandbox: cannot listen for SMTP on {args.host}:{args.smtp_port}: {exc}", file=sys.stderr)
            return 1
        asyncio.run(server.serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
