"""What the fan-out benches share: the local provider's process, the timed round, the medians.

Each fan-out bench (email, SMS, chat) runs the same round: start N workers, POST, wait for the
ledger, note the workers' CPU and peak RSS, stop them; then its bare-loop reference right after.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvloop
from sqlalchemy.ext.asyncio import AsyncEngine

from bench._common import (
    REDIS_URL,
    Process,
    Round,
    Stack,
    bench_env,
    cpu_seconds,
    free_port,
    peak_rss_mb,
    post_and_wait,
)
from broadcaster.config import Settings
from broadcaster.domain.incidents import load_message
from broadcaster.message import Message


class LocalProvider:
    """A local provider app (``bench._<name>_app:app``) in a uvicorn process of its own.

    The app answers ``GET /_bench/count`` with ``{"messages": accepted, "requests": all}``.
    """

    def __init__(self, stack: Stack, module: str, title: str) -> None:
        self.title = title
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.process: Process = stack.spawn(module.rsplit(".", 1)[-1].strip("_"), argv, bench_env({}))

    def wait(self) -> None:
        """Return once the provider answers; its exit or silence is an error."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                self.count()
                return
            if not self.process.alive():
                raise RuntimeError(f"provider exited: {self.process.log_text()[-2000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"the local {self.title} did not answer")

    def count(self) -> int:
        return int(httpx.get(self.base_url + "/_bench/count", timeout=5).json()["messages"])


def base_settings(database_url: str, queue: str, **extra: Any) -> dict[str, Any]:
    """The settings every bench's serve and workers run with, plus the channel's own."""
    return {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "queue_name": queue,
        "public_url": "http://status.bench",
        "secret_key": "bench-secret-key-long-enough-for-serve-and-worker",
        "page_name": "Bench Status",
        **extra,
    }


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--database``, ``--batch-size``, ``--repeat``, ``--keep``: as every fan-out bench takes them."""
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the project's setting")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the rounds; medians are reported")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")


async def pipeline_round(
    stack: Stack,
    engine: AsyncEngine,
    base_url: str,
    token: str,
    channel: str,
    n: int,
    count: int,
    title: str,
    accepted: Callable[[], int | None],
    *,
    sink_times: bool = False,
) -> tuple[Round, int]:
    """Start ``count`` workers, POST, wait for the ledger, note their CPU and peak RSS, stop them.

    Returns the round and how many the receiver (``accepted``, a running count) got in it;
    with ``sink_times`` the round also notes when the receiver had them all.
    """
    workers = stack.workers(count, tag=str(count))
    before = accepted() or 0
    cpu_before = [cpu_seconds(w.pid) or 0.0 for w in workers]
    result = await post_and_wait(
        base_url,
        token,
        engine,
        channel,
        n,
        title,
        received=(lambda: (accepted() or 0) - before) if sink_times else None,
    )
    result.worker_cpu_s = sum((cpu_seconds(w.pid) or 0.0) - b for w, b in zip(workers, cpu_before, strict=True))
    result.peak_rss_mb = [peak_rss_mb(w.pid) for w in workers]
    stack.stop(workers)
    return result, (accepted() or 0) - before


async def message_of(engine: AsyncEngine, settings: Settings, update_id: str) -> Message:
    """The update as the channels render it: what a reference loop sends."""
    async with engine.connect() as conn:
        return await load_message(conn, update_id, settings.page_name, settings.public_url)


@dataclass
class Measured:
    """One pipeline round and the msg/s of its reference run right after."""

    repetition: int
    workers: int
    result: Round
    raw: float
    source: float | None = None  # a C reference (Postfix smtp-source), when the bench has one

    @property
    def ratio(self) -> float:
        return self.result.rate / self.raw


@dataclass
class Medians:
    """The rounds with one worker count, as medians (peak RSS: the highest)."""

    workers: int
    rate: float
    raw: float
    ratio: float
    rss: float
    source: float | None = None
    first_s: float | None = None  # POST returned to the first message received


def medians(measured: list[Measured]) -> Iterator[Medians]:
    """Per worker count, fewest first."""
    for count in sorted({m.workers for m in measured}):
        runs = [m for m in measured if m.workers == count]
        yield Medians(
            count,
            statistics.median(m.result.rate for m in runs),
            statistics.median(m.raw for m in runs),
            statistics.median(m.ratio for m in runs),
            max((r or 0.0) for m in runs for r in m.result.peak_rss_mb),
            _median([m.source for m in runs]),
            _median([m.result.first_seconds for m in runs]),
        )


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def run(main_async: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], args: argparse.Namespace) -> int:
    """Run the bench under uvloop, as ``broadcaster worker`` does, so the reference loop goes as fast
    as it can too; 1 when the run itself broke."""
    try:
        return uvloop.run(main_async(args))
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
