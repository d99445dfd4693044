"""SMS fan-out, end to end: POST an incident → every subscriber's SMS accepted by the provider.

    python bench/sms_fanout.py                   # 10,000 subscribers, 1 worker (~1 min)
    python bench/sms_fanout.py --full            # 100,000 subscribers, 1 and 2 workers
    python bench/sms_fanout.py --workers 1,2 --repeat 3

What runs: a temporary database seeded with N confirmed SMS subscribers, Redis,
``broadcaster serve`` and ``broadcaster worker`` as real processes, and the tests' local
Twilio (``sandbox/providers/twilio.py``: auth, required fields, error codes, a
recorded message per request) served by uvicorn in a process of its own. Timed from the
POST to the moment the ledger shows every row ``sent``; the provider's own count is checked.

``sms_rate_per_s`` is set to 100,000 for the bench, so the channel's pacing (default 50/s,
what a real Twilio number allows) does not bind: the figure is the machinery's own speed.
``sms_concurrency`` (requests in flight per worker) stays at the project's setting.

Reference measured in the same run, right after each pipeline round: a bare httpx loop
(one ``AsyncClient``, the same number of requests in flight, the same form fields and
body) posting N messages to the same provider. With ``wrk`` installed, the provider's own
ceiling (wrk posting the same form at the same concurrency) is printed too, to show whether
the provider app is what limits both. Exit status 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
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
from channels.sms import STATUS_CALLBACK_PATH, SmsChannel, SmsSettings

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "test-auth-token"
SENDER = "+15005550006"
RATE_PER_S = 100_000.0


def number_of(i: int) -> str:
    return f"+1555{i:07d}"


MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


async def httpx_loop(provider: LocalProvider, count: int, concurrency: int, body: str, callback: str) -> float:
    """A bare httpx loop: ``concurrency`` requests in flight over one pooled client; msg/s."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=provider.base_url, auth=(ACCOUNT_SID, AUTH_TOKEN), limits=limits, timeout=30
    ) as client:

        async def lane(k: int) -> None:
            for i in range(k, count, concurrency):
                response = await client.post(
                    MESSAGES_PATH,
                    data={"To": number_of(i), "From": SENDER, "Body": body, "StatusCallback": callback},
                )
                if response.status_code != 201:
                    raise RuntimeError(f"provider answered {response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(lane(k) for k in range(concurrency)))
        return count / (time.perf_counter() - started)


def wrk_ceiling(provider: LocalProvider, concurrency: int, body: str, callback: str, workdir: Path) -> float | None:
    """The provider's own ceiling: wrk (C) posting the same form for 3 s; requests/s, or None."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    form = httpx.QueryParams({"To": number_of(0), "From": SENDER, "Body": body, "StatusCallback": callback})
    import base64

    auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {_lua(str(form))}\n"
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'wrk.headers["Authorization"] = "Basic {auth}"\n'
    )
    result = subprocess.run(
        [wrk, "-t1", f"-c{concurrency}", "-d3s", "-s", str(script), provider.base_url + MESSAGES_PATH],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--full", action="store_true", help="100,000 subscribers, 1 and 2 workers")
    parser.add_argument("--workers", default=None, help="worker counts to run, e.g. 1,2 (default 1; 1,2 with --full)")
    parser.add_argument("--concurrency", type=int, default=None, help="sms_concurrency per worker")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.full:
        args.subscribers = max(args.subscribers, 100_000)
    args.worker_counts = [int(n) for n in str(args.workers or ("1,2" if args.full else "1")).split(",") if n]
    return args


async def main_async(args: argparse.Namespace) -> int:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    batch_size = args.batch_size or defaults.batch_size
    concurrency = args.concurrency or SmsSettings().sms_concurrency
    n = args.subscribers
    stack = Stack(backend=args.database, keep=args.keep)
    queue = queue_name()
    measured: list[Measured] = []
    ceiling: float | None = None
    print(
        f"SMS fan-out bench: {n:,} subscribers, local Twilio on uvicorn (own process), database "
        f"{args.database}, batch_size {batch_size}, sms_concurrency {concurrency} per worker, "
        f"sms_rate_per_s {RATE_PER_S:,.0f} (pacing off), {args.repeat} repetition(s)"
    )
    print(f"machine: {machine_note()}")
    try:
        provider = LocalProvider(stack, "bench._twilio_app", "Twilio")
        provider.wait()
        with temp_database(args.database, stack.workdir) as url:
            stack.settings = base_settings(
                url,
                queue,
                twilio_base_url=provider.base_url,
                twilio_account_sid=ACCOUNT_SID,
                twilio_auth_token=AUTH_TOKEN,
                twilio_from=SENDER,
                sms_rate_per_s=RATE_PER_S,
                sms_concurrency=concurrency,
                batch_size=batch_size,
            )
            settings = Settings(_env_file=None, **stack.settings)  # type: ignore[call-arg]
            callback = settings.public_url + STATUS_CALLBACK_PATH
            async with engine_for(url) as engine:
                seconds = await seed_subscribers(engine, "sms", n, number_of)
                print(f"seeded {n:,} subscribers in {seconds:.1f} s")
                token = await api_token(engine)
                base_url = stack.serve()
                body = ""
                for repetition in range(args.repeat):
                    for count in args.worker_counts:
                        result, got = await pipeline_round(
                            stack,
                            engine,
                            base_url,
                            token,
                            "sms",
                            n,
                            count,
                            f"SMS bench with {count} worker(s)",
                            provider.count,
                        )
                        print(
                            f"{count} worker(s): {result.rate:,.0f} msg/s, ledger {result.counts}, provider "
                            f"accepted {got:,}, {result.seconds:.2f} s from the POST"
                        )
                        if not body:
                            message = await message_of(engine, settings, result.update_id)
                            body = str(SmsChannel(settings).render(message)["text"])
                        before = provider.count()
                        raw = await httpx_loop(provider, n, concurrency * count, body, callback)
                        got = provider.count() - before
                        print(
                            f"  bare httpx loop, {concurrency * count} in flight: {raw:,.0f} msg/s, "
                            f"provider accepted {got:,}"
                        )
                        measured.append(Measured(repetition, count, result, raw))
                ceiling = wrk_ceiling(provider, concurrency, body, callback, stack.workdir)
            await clear_queue(REDIS_URL, queue)
    finally:
        stack.close()
    report(measured, ceiling, n, concurrency)
    return 0


def report(measured: list[Measured], ceiling: float | None, n: int, concurrency: int) -> None:
    rows: list[list[Any]] = []
    for m in medians(measured):
        rows.append(
            [f"pipeline, {m.workers} worker(s): POST → ledger all sent", n, m.rate, f"{m.ratio:.2f}", f"{m.rss:.0f}"]
        )
        rows.append([f"  bare httpx loop right after, {concurrency * m.workers} in flight", n, m.raw, "1.00", "-"])
    if ceiling is not None:
        rows.append([f"provider ceiling: wrk, {concurrency} connections, 3 s", "-", ceiling, "-", "-"])
    print()
    reps = len({m.repetition for m in measured})
    print(f"msg/s: medians of {reps} repetition(s); × raw: the pipeline's rate over the httpx loop run right after")
    print(table(rows, ["measured", "N", "msg/s", "× raw", "worker peak RSS MB"]))
    print(f"machine after: {machine_note()}")


def main(argv: list[str] | None = None) -> int:
    return run(main_async, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
