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
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvloop

from bench._common import (
    REDIS_URL,
    Process,
    Round,
    Stack,
    api_token,
    bench_env,
    clear_queue,
    cpu_seconds,
    engine_for,
    free_port,
    machine_note,
    peak_rss_mb,
    post_and_wait,
    queue_name,
    seed_subscribers,
    table,
    temp_database,
)
from broadcaster.config import Settings
from broadcaster.domain.incidents import load_message
from channels._chat import CONCURRENCY
from channels.discord import DiscordChannel

TARGET = 0.7


class Provider:
    """The local Discord in a uvicorn process of its own."""

    def __init__(self, stack: Stack) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "uvicorn", "bench._discord_app:app", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.process: Process = stack.spawn("discord", argv, bench_env({}))

    def wait(self) -> Provider:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                self.count()
                return self
            if not self.process.alive():
                raise RuntimeError(f"provider exited: {self.process.log_text()[-2000:]}")
            time.sleep(0.1)
        raise TimeoutError("the local Discord did not answer")

    def count(self) -> int:
        return int(httpx.get(self.base_url + "/_bench/count", timeout=5).json()["messages"])

    def url_of(self, i: int) -> str:
        return f"{self.base_url}/api/webhooks/{1_000_000 + i}/token-{i}"


async def httpx_loop(provider: Provider, count: int, concurrency: int, body: bytes) -> tuple[float, float]:
    """A bare httpx loop: ``concurrency`` requests in flight over one pooled client; (msg/s, CPU µs a message)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json; charset=utf-8"}
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def lane(k: int) -> None:
            for i in range(k, count, concurrency):
                response = await client.post(provider.url_of(i), content=body, headers=headers, params={"wait": "true"})
                if response.status_code != 200:
                    raise RuntimeError(f"provider answered {response.status_code}: {response.text[:200]}")

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(lane(k) for k in range(concurrency)))
        return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6


@dataclass
class Measured:
    repetition: int
    workers: int
    result: Round
    raw: float

    @property
    def ratio(self) -> float:
        return self.result.rate / self.raw


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2_000)
    parser.add_argument("--workers", default="1", help="worker counts to run, e.g. 1,2")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the project's setting")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the rounds; medians are reported")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
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
        provider = Provider(stack).wait()
        with temp_database(args.database, stack.workdir) as url:
            stack.settings = {
                "database_url": url,
                "redis_url": REDIS_URL,
                "queue_name": queue,
                "public_url": "http://status.bench",
                "secret_key": "bench-secret-key-long-enough-for-serve-and-worker",
                "page_name": "Bench Status",
                "webhook_allow_private": True,  # the subscribers' webhooks are on loopback
                "batch_size": batch_size,
            }
            settings = Settings(_env_file=None, **stack.settings)  # type: ignore[call-arg]
            async with engine_for(url) as engine:
                seconds = await seed_subscribers(engine, "discord", n, provider.url_of)
                print(f"seeded {n:,} subscribers in {seconds:.1f} s")
                token = await api_token(engine)
                base_url = stack.serve()
                body = b""
                for repetition in range(args.repeat):
                    for count in args.worker_counts:
                        workers = stack.workers(count, tag=str(count))
                        cpu_before = [cpu_seconds(w.pid) or 0.0 for w in workers]
                        before = provider.count()
                        result = await post_and_wait(
                            base_url, token, engine, "discord", n, f"Chat bench with {count} worker(s)"
                        )
                        result.peak_rss_mb = [peak_rss_mb(w.pid) for w in workers]
                        result.worker_cpu_s = sum(
                            (cpu_seconds(w.pid) or 0.0) - b for w, b in zip(workers, cpu_before, strict=True)
                        )
                        stack.stop(workers)
                        got = provider.count() - before
                        print(
                            f"{count} worker(s): {result.rate:,.0f} msg/s, ledger {result.counts}, provider "
                            f"made {got:,} messages, {result.seconds:.2f} s from the POST, "
                            f"worker CPU {result.cpu_us_per_message or 0:.0f} µs/message"
                        )
                        if not body:
                            async with engine.connect() as conn:
                                message = await load_message(
                                    conn, result.update_id, settings.page_name, settings.public_url
                                )
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
    for count in sorted({m.workers for m in measured}):
        runs = [m for m in measured if m.workers == count]
        rate = statistics.median(m.result.rate for m in runs)
        raw = statistics.median(m.raw for m in runs)
        ratio = statistics.median(m.ratio for m in runs)
        rss = max((r or 0.0) for m in runs for r in m.result.peak_rss_mb)
        rows.append([f"pipeline, {count} worker(s): POST → ledger all sent", n, rate, f"{ratio:.2f}", f"{rss:.0f}"])
        rows.append([f"  bare httpx loop right after, {CONCURRENCY * count} in flight", n, raw, "1.00", "-"])
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
    args = parse_args(argv)
    try:
        # uvloop, as ``broadcaster worker`` uses, so the httpx loop runs as fast as it can too
        return uvloop.run(main_async(args))
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
