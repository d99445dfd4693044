"""Subscribers stored as if sign-up had let them through, and one update delivered to them to the end."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import deliveries, new_id, subscribers, utcnow
from broadcaster.runtime import Runtime
from broadcaster.security import new_webhook_secret
from tests.conftest import run_worker
from tests.support.posting import post_body


async def store_confirmed(runtime: Runtime, channel: str, addresses: Sequence[str]) -> None:
    """Confirmed subscribers written straight to the table, past sign-up's checks (a webhook gets its secret)."""
    now = utcnow()
    async with runtime.engine.begin() as conn:
        for address in addresses:
            await conn.execute(
                subscribers.insert().values(
                    id=new_id(),
                    channel=channel,
                    address=address,
                    confirmed=True,
                    confirmed_at=now,
                    created_at=now,
                    secret=new_webhook_secret() if channel == "webhook" else None,
                    drill=False,
                    meta={},
                )
            )


async def post_and_deliver(
    settings: Settings, runtime: Runtime, channels: Sequence[str]
) -> dict[str, tuple[str, int, str]]:
    """Post one update to ``channels`` under ``settings``, run the worker to the end:
    {subscriber address: (state, attempts, last error)}."""
    strict = Runtime.build(settings)
    try:
        posted, _ = await post_body(
            strict, {"title": "x", "status": "investigating", "message": "x", "channels": list(channels)}
        )
    finally:
        await strict.aclose()
    await run_worker(settings)
    query = (
        select(subscribers.c.address, deliveries.c.state, deliveries.c.attempts, deliveries.c.last_error)
        .join(subscribers, subscribers.c.id == deliveries.c.recipient)
        .where(deliveries.c.update_id == posted.update_id)
    )
    async with runtime.engine.connect() as conn:
        return {row.address: (row.state, row.attempts, row.last_error) for row in await conn.execute(query)}
