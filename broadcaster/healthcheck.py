"""``python -m broadcaster.worker_health``: exit 0 when this host's worker is alive.

A running worker refreshes its own Redis key (``<queue>:health-check:<hostname>``) every
``HEALTH_CHECK_INTERVAL_S``; the key expires soon after, so a stuck or dead worker fails
the check. Each container has its own hostname, so ``--scale worker=N`` checks each one.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from broadcaster.config import Settings, get_settings
from broadcaster.worker import health_check_key


async def check(settings: Settings, host: str | None = None) -> bool:
    """True when the worker on ``host`` (default: this one) reported in time."""
    client = aioredis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=3)  # type: ignore[no-untyped-call]
    try:
        return bool(await client.exists(health_check_key(settings, host)))
    finally:
        await client.aclose()


def main() -> int:
    try:
        alive = asyncio.run(check(get_settings()))
    except Exception as exc:  # any failure to ask is a failed check
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print("healthy" if alive else "unhealthy: no recent health report from this worker")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
