"""Chat fan-out, end to end: POST an incident → every Discord-style webhook subscriber's message made.

    python bench/chat_fanout.py                  # 2,000 webhook subscribers, 1 worker (~30 s)
    python bench/chat_fanout.py --subscribers 20000 --workers 1,2 --repeat 3

What runs: a temporary database seeded with N confirmed ``discord`` subscribers, each its own
webhook URL (``/api/webhooks/{i}/token-{i}``) at the tests' local Discord
(``sandbox/providers/discord.py``: Discord's embed limits checked, the message made and
answered, as ``?wait=true`` asks) served by uvicorn in a process of its own; Redis;
``broadcaster serve`` and ``broadcaster worker`` as real processes. Timed from the POST to the
moment the ledger shows every row ``sent``; the provider's own count is checked.

Reference, measured in the same run right after each pipeline round: a bare httpx loop (one
pooled ``AsyncClient``, as many requests in flight as the workers have in all, 32 each) posting
the channel's own rendition of the same update to the same N URLs with ``?wait=true``: what a
script that knew every URL and did nothing else would do. Target: the pipeline ≥ 0.7 × the loop
with one worker. Exit status 0 whatever the figures; 1 only when the run itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._common import (
    REDIS_URL,
    Stack,
    api_token,
    clear_queue,
    engine_for,
    machine_note,
    queue_name,
    seed_subscribers,
    table,
    temp_database,
)
from bench._fanout import (
    LocalProvider,
    Measured,
    add_common_args,
    base_settings,
    medians,
    message_of,
    pipeline_round,
    run,
)
from broadcaster.config import Settings
from channels._chat import CONCURRENCY
from channels.discord import DiscordChannel

TARGET = 0.7


def url_of(provider: LocalProvider, i: int) -> str:
    return f"{provider.base_url}/api/webhooks/{1_000_000 + i}/token-{i}"


async def httpx_loop(provider: LocalProvider, count: int, concurrency: int, body: bytes) -> tuple[float, float]:
    """A bare httpx loop: ``concurrency`` requests in flight over one pooled client; (msg/s, CPU µs a message)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json; charset=utf-8"}
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def lane(k: int) -> None:
            for i in range(k, count, concurrency):
                response = await client.post(
                    url_of(provider, i), content=body, headers=headers, params={"wait": "true"}
                )
                if response.status_code != 200:
                    raise RuntimeError(f"provider answered {response.status_code}: {response.text[:200]}")

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(lane(k) for k in range(concurrency)))
        return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2_000)
    parser.add_argument("--workers", default="1", help="worker counts to run, e.g. 1,2")
    add_common_args(parser)
    args = parser.parse_args(argv)
    args.worker_counts = [int(n) for n in str(args.workers).split(",") if n.strip()]
    return args


async def main_async(args: argparse.Namespace) -> int:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    batch_size = args.batch_size or defaults.batch_size
    n = args.subscribers
    stack = Stack(backend=args.database, keep=args.keep)
    queue = queue_name()
    measured: list[Measured] = []
    print(
        f"chat fan-out bench: {n:,} Discord-style webhook subscribers, local Discord on uvicorn (own process), "
        f"database {args.database}, batch_size {batch_size}, {CONCURRENCY} requests in flight per worker, "
        f"{args.repeat} repetition(s)"
    )
    print(f"machine: {machine_note()}")
    try:
        provider = LocalProvider(stack, "bench._discord_app", "Discord")
        provider.wait()
        with temp_database(args.database, stack.workdir) as url:
            stack.settings = base_settings(
                url,
                queue,
                webhook_allow_private=True,  # the subscribers' webhooks are on loopback
                batch_size=batch_size,
            )
            settings = Settings(_env_file=None, **stack.settings)  # type: ignore[call-arg]
            async with engine_for(url) as engine:
                seconds = await seed_subscribers(engine, "discord", n, lambda i: url_of(provider, i))
                print(f"seeded {n:,} subscribers in {seconds:.1f} s")
                token = await api_token(engine)
                base_url = stack.serve()
                body = b""
                for repetition in range(args.repeat):
                    for count in args.worker_counts:
                        result, got = await pipeline_round(
                            stack,
                            engine,
                            base_url,
                            token,
                            "discord",
                            n,
                            count,
                            f"Chat bench with {count} worker(s)",
                            provider.count,
                        )
                        print(
                            f"{count} worker(s): {result.rate:,.0f} msg/s, ledger {result.counts}, provider "
                            f"made {got:,} messages, {result.seconds:.2f} s from the POST, "
                            f"worker CPU {result.cpu_us_per_message or 0:.0f} µs/message"
                        )
                        if not body:
                            message = await message_of(engine, settings, result.update_id)
                            rendition = DiscordChannel().render(message)
                            body = json.dumps(rendition, separators=(",", ":"), ensure_ascii=False).encode()
                        before = provider.count()
                        raw, raw_cpu = await httpx_loop(provider, n, CONCURRENCY * count, body)
                        got = provider.count() - before
                        print(
                            f"  bare httpx loop, {CONCURRENCY * count} in flight: {raw:,.0f} msg/s, "
                            f"provider made {got:,} messages, CPU {raw_cpu:.0f} µs/message"
                        )
                        measured.append(Measured(repetition, count, result, raw))
            await clear_queue(REDIS_URL, queue)
    finally:
        stack.close()
    report(measured, n)
    return 0


def report(measured: list[Measured], n: int) -> None:
    rows: list[list[Any]] = []
    for m in medians(measured):
        rows.append(
            [f"pipeline, {m.workers} worker(s): POST → ledger all sent", n, m.rate, f"{m.ratio:.2f}", f"{m.rss:.0f}"]
        )
        rows.append([f"  bare httpx loop right after, {CONCURRENCY * m.workers} in flight", n, m.raw, "1.00", "-"])
    print()
    reps = len({m.repetition for m in measured})
    print(f"msg/s: medians of {reps} repetition(s); × raw: the pipeline's rate over the httpx loop run right after")
    print(table(rows, ["measured", "N", "msg/s", "× raw", "worker peak RSS MB"]))
    one = [m.ratio for m in measured if m.workers == 1]
    if one:
        verdict = "holds" if statistics.median(one) >= TARGET else "does NOT hold"
        print(f"target ≥ {TARGET} × the loop with one worker: {verdict} ({statistics.median(one):.2f})")
    print(f"machine after: {machine_note()}")


def main(argv: list[str] | None = None) -> int:
    return run(main_async, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
