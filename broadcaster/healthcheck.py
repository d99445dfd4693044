"""Container health checks: ``python -m broadcaster.healthcheck web|worker|database``.

* ``web``: ``GET /healthz`` on this container's web server answers 200 (the database answers);
* ``worker``: this host's worker is alive by the same heartbeat the relay trusts with its claims
  (``<queue>:worker-host:<hostname>``, refreshed every second, gone a few seconds after the
  worker stops and at once when it stops cleanly), so a stuck or dead worker fails. Each
  container has its own hostname, so with ``--scale worker=N`` each worker is checked on its own;
* ``database``: the database answers ``SELECT 1`` (for one-shot jobs such as migrations).

Exit status 0 means healthy. Only the standard library and broadcaster's own dependencies are
used, so the check runs in the slim image as is.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import urllib.request
from collections.abc import Sequence

import redis.asyncio as aioredis
from sqlalchemy import text

from broadcaster.config import Settings, get_settings
from broadcaster.db import make_engine
from broadcaster.jobs.heartbeat import host_alive


async def worker_alive(settings: Settings, host: str | None = None) -> bool:
    """True when the worker on ``host`` (default: this one) reported in time."""
    client = aioredis.from_url(  # type: ignore[no-untyped-call]
        settings.redis_url, socket_connect_timeout=2, socket_timeout=3
    )
    try:
        return await host_alive(client, settings.queue_name, host)
    finally:
        await client.aclose()


async def database_answers(settings: Settings) -> bool:
    engine = make_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    finally:
        await engine.dispose()


def web_answers(url: str, timeout_s: float = 3.0) -> bool:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return int(response.status) == 200


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broadcaster.healthcheck", description=__doc__)
    parser.add_argument("what", choices=["web", "worker", "database"])
    parser.add_argument("--url", default="http://127.0.0.1:8000/healthz", help="for web")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        if args.what == "web":
            healthy = web_answers(args.url)
        elif args.what == "worker":
            healthy = asyncio.run(worker_alive(settings))
        else:
            healthy = asyncio.run(database_answers(settings))
    except Exception as exc:  # any failure to ask is a failed check
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print("healthy" if healthy else f"unhealthy: no recent report from this {args.what}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
