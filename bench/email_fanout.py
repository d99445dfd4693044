"""Email fan-out, end to end: POST an incident → every subscriber's mail accepted by the relay.

    python bench/email_fanout.py                 # 10,000 subscribers, 1 and 2 workers (~1 min)
    python bench/email_fanout.py --full          # 100,000 subscribers
    python bench/email_fanout.py --subscribers 50000 --workers 1 --database postgres

What runs: a temporary database seeded with N confirmed email subscribers, Redis,
``broadcaster serve`` and ``broadcaster worker`` as real processes, Postfix's ``smtp-sink``
as the receiving relay (``--sink aiosmtpd`` for a Python one: that sink is then the
bottleneck, see shared/performance.md). Timed from the POST to the moment the ledger shows
every row ``sent``; the sink's own count of accepted mails is checked and its own time noted.

References measured in the same run, against the same sink:
- raw: a bare aiosmtplib loop over the same number of connections (``smtp_max_connections``),
  the same mail rendered once as bytes with the recipient's address substituted, ``sendmail()``;
  the fastest plain aiosmtplib goes, with no database or queue at all;
- smtp-source: Postfix's own load generator (C) over as many connections, mails of the same
  size: the machine's SMTP limit, what two workers are compared with;
- apprise: Apprise ``mailto://`` targets, one per recipient, notified at once, on a sample
  (it is slow) — what a Python user would script instead.

Targets: pipeline ≥ 0.8 × raw with one worker, ≥ 10× Apprise (aim 30×), worker RSS < 250 MB
at 100k. Exit status 0 whatever the figures; 1 only when the run itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosmtplib

from bench._common import (
    REDIS_URL,
    Process,
    Round,
    Stack,
    api_token,
    clear_queue,
    engine_for,
    free_port,
    machine_note,
    queue_name,
    seed_subscribers,
    table,
    temp_database,
    wait_port,
)
from bench._fanout import Measured, add_common_args, base_settings, medians, message_of, pipeline_round, run
from broadcaster.config import Settings
from channels.base import Recipient
from channels.email import EmailChannel, EmailSettings

SENDER = "status@bench.example"
_MESG = re.compile(rb"mesg=(\d+)")


def address_of(i: int) -> str:
    return f"user{i:07d}@example.org"


class Sink:
    """The receiving relay: Postfix's ``smtp-sink`` (counts what it accepts) or aiosmtpd."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.log_path = workdir / "sink.log"
        self.process: Process | None = None
        self._controller: Any = None
        self._count = 0
        self._lock = threading.Lock()

    def start(self) -> Sink:
        if self.kind == "smtp-sink":
            import os

            self.process = Process(
                ["/usr/sbin/smtp-sink", "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "1000"],
                dict(os.environ),
                self.log_path,
                self.log_path.parent,
            ).start()
        else:
            from aiosmtpd.controller import Controller

            sink = self

            class Handler:
                async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                    with sink._lock:
                        sink._count += 1
                    return "250 OK"

            self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
            self._controller.start()
        wait_port(self.port)
        return self

    def accepted(self) -> int | None:
        """Mails accepted so far (``smtp-sink -c`` prints a running ``mesg=N`` counter)."""
        if self.kind != "smtp-sink":
            return self._count
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, 2)
                log.seek(max(0, log.tell() - 200))
                found = _MESG.findall(log.read())
        except OSError:
            return None
        return int(found[-1]) if found else 0

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self._controller is not None:
            self._controller.stop()


# --- the references ---------------------------------------------------------------------------


def sample_mail(settings: Settings, message: Any) -> tuple[bytes, bytes, bytes]:
    """The project's own mail for recipient 0, as bytes, with what differs per recipient."""
    channel = EmailChannel(settings)
    rendition = channel.render(message)
    recipient = Recipient(
        delivery_id=1,
        subscriber_id="e00000000000",
        address=address_of(0),
        unsubscribe_url=f"{settings.public_url}/unsubscribe?token=t0",
        manage_url=f"{settings.public_url}/subscriptions/manage?token=t0",
    )
    _address, data, _message_id = channel.message_bytes(rendition, recipient)
    text = str(rendition["text"])
    for name, value in (("unsubscribe_url", recipient.unsubscribe_url), ("manage_url", recipient.manage_url)):
        text = text.replace("{{" + name + "}}", value)
    return data, address_of(0).encode(), text.encode()


async def raw_loop(port: int, count: int, connections: int, mail: bytes, marker: bytes) -> tuple[float, float]:
    """A bare aiosmtplib loop: ``connections`` sessions share ``count`` mails; (msg/s, CPU µs a mail)."""

    async def session(k: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await smtp.connect()
        for i in range(k, count, connections):
            address = address_of(i)
            await smtp.sendmail(SENDER, [address], mail.replace(marker, address.encode()))
        await smtp.quit()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(session(k) for k in range(connections)))
    return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6


def smtp_source(port: int, count: int, connections: int, size: int) -> float:
    """Postfix ``smtp-source``: ``count`` mails of ``size`` bytes over ``connections`` sessions; msg/s."""
    argv = ["/usr/sbin/smtp-source", "-s", str(connections), "-l", str(size), "-m", str(count)]
    argv += ["-f", SENDER, "-t", address_of(0), f"127.0.0.1:{port}"]
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return count / (time.perf_counter() - started)


def apprise_fanout(port: int, count: int, subject: str, body: str) -> float:
    """Apprise with one ``mailto://`` target per recipient, notified at once; returns msg/s."""
    import apprise

    notifier = apprise.Apprise()
    for i in range(count):
        notifier.add(f"mailto://127.0.0.1:{port}?mode=insecure&from={SENDER}&to={address_of(i)}")
    started = time.perf_counter()
    if not notifier.notify(title=subject, body=body):
        raise RuntimeError("apprise reported a failed notification")
    return count / (time.perf_counter() - started)


# --- the run ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--full", action="store_true", help="100,000 subscribers")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    parser.add_argument("--sink", choices=["smtp-sink", "aiosmtpd"], default="smtp-sink")
    parser.add_argument("--max-jobs", type=int, default=None)
    parser.add_argument("--connections", type=int, default=None, help="smtp_max_connections per worker")
    parser.add_argument("--apprise-sample", type=int, default=500)
    parser.add_argument("--skip-apprise", action="store_true")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.full:
        args.subscribers = max(args.subscribers, 100_000)
    args.worker_counts = [int(n) for n in str(args.workers).split(",") if n.strip()]
    return args


@contextlib.contextmanager
def running(stack: Stack, sink: Sink) -> Iterator[None]:
    try:
        yield
    finally:
        stack.close()
        sink.stop()


async def main_async(args: argparse.Namespace) -> int:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    batch_size = args.batch_size or defaults.batch_size
    max_jobs = args.max_jobs or defaults.max_jobs
    connections = args.connections or EmailSettings().smtp_max_connections
    n = args.subscribers
    stack = Stack(backend=args.database, keep=args.keep)
    sink = Sink(args.sink, stack.workdir).start()
    queue = queue_name()
    measured: list[Measured] = []
    print(
        f"email fan-out bench: {n:,} subscribers, sink {args.sink}, database {args.database}, "
        f"batch_size {batch_size}, max_jobs {max_jobs}, smtp_max_connections {connections} per worker, "
        f"{args.repeat} repetition(s)"
    )
    print(f"machine: {machine_note()}")
    with running(stack, sink), temp_database(args.database, stack.workdir) as url:
        stack.settings = base_settings(
            url,
            queue,
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            email_from=f"Bench Status <{SENDER}>",
            batch_size=batch_size,
            max_jobs=max_jobs,
            smtp_max_connections=connections,
        )
        settings = Settings(_env_file=None, **stack.settings)  # type: ignore[call-arg]
        async with engine_for(url) as engine:
            seconds = await seed_subscribers(engine, "email", n, address_of)
            print(f"seeded {n:,} subscribers in {seconds:.1f} s")
            token = await api_token(engine)
            base_url = stack.serve()
            mail = marker = text = b""
            subject = ""
            for repetition in range(args.repeat):
                for count in args.worker_counts:
                    result = await email_round(stack, sink, engine, base_url, token, n, count)
                    if not mail:
                        message = await message_of(engine, settings, result.update_id)
                        mail, marker, text = sample_mail(settings, message)
                        subject = message.subject
                    # the reference right after, over as many connections as the workers had in all
                    before = sink.accepted() or 0
                    raw, raw_cpu = await raw_loop(sink.port, n, connections * count, mail, marker)
                    raw_got = (sink.accepted() or 0) - before
                    print(
                        f"  raw aiosmtplib loop: {n:,} mails of {len(mail):,} bytes over {connections * count} "
                        f"connections: {raw:,.0f} msg/s, sink accepted {raw_got:,}, CPU {raw_cpu:.0f} µs/mail"
                    )
                    source: float | None = None
                    if args.sink == "smtp-sink":
                        before = sink.accepted() or 0
                        source = await asyncio.to_thread(smtp_source, sink.port, n, connections * count, len(mail))
                        got = (sink.accepted() or 0) - before
                        print(
                            f"  smtp-source: {n:,} mails of {len(mail):,} bytes over {connections * count} "
                            f"connections: {source:,.0f} msg/s, sink accepted {got:,}"
                        )
                    measured.append(Measured(repetition, count, result, raw, source))
        await clear_queue(REDIS_URL, queue)
        apprise_rate: float | None = None
        sample = min(n, args.apprise_sample)
        if not args.skip_apprise:
            before = sink.accepted() or 0
            apprise_rate = await asyncio.to_thread(apprise_fanout, sink.port, sample, subject, text.decode())
            got = (sink.accepted() or 0) - before
            print(f"apprise: {sample:,} mailto:// targets: {apprise_rate:,.1f} msg/s, sink accepted {got:,}")
    report(measured, apprise_rate, sample, n, connections)
    return 0


async def email_round(stack: Stack, sink: Sink, engine: Any, base_url: str, token: str, n: int, count: int) -> Round:
    """Start ``count`` workers, POST, wait for the ledger, note their peak RSS, stop them."""
    result, got = await pipeline_round(
        stack,
        engine,
        base_url,
        token,
        "email",
        n,
        count,
        f"Bench with {count} worker(s)",
        sink.accepted,
        sink_times=True,
    )
    print(
        f"{count} worker(s): {result.rate:,.0f} msg/s, ledger {result.counts}, sink accepted {got:,}, "
        f"{result.seconds:.2f} s from the POST (sink had them all at {_s(result.sink_seconds)}), "
        f"worker CPU {result.cpu_us_per_message or 0:.0f} µs/mail, first mail accepted "
        f"{_s(result.first_seconds)} after the POST returned"
    )
    return result


def report(measured: list[Measured], apprise_rate: float | None, sample: int, n: int, connections: int) -> None:
    rows: list[list[Any]] = []
    for m in medians(measured):
        rows.append(
            [
                f"pipeline, {m.workers} worker(s): POST → ledger all sent",
                n,
                m.rate,
                f"{m.ratio:.2f}",
                _ratio(m.rate, apprise_rate),
                _x(m.rate, m.source),
                f"{m.rss:.0f}",
                _s(m.first_s),
            ]
        )
        rows.append(
            [
                f"  raw aiosmtplib loop right after, {connections * m.workers} connections",
                n,
                m.raw,
                "1.00",
                _ratio(m.raw, apprise_rate),
                _x(m.raw, m.source),
                "-",
                "-",
            ]
        )
        if m.source is not None:
            rows.append(
                [
                    f"  Postfix smtp-source (C), {connections * m.workers} connections",
                    n,
                    m.source,
                    "-",
                    _ratio(m.source, apprise_rate),
                    "1.00",
                    "-",
                    "-",
                ]
            )
    if apprise_rate is not None:
        rows.append(["Apprise mailto:// targets (sample)", sample, apprise_rate, "-", "1", "-", "-", "-"])
    print()
    reps = len({m.repetition for m in measured})
    print(f"msg/s: medians of {reps} repetition(s); × raw: the pipeline's rate over the raw loop run right after it")
    headers = ["measured", "N", "msg/s", "× raw", "× apprise", "× smtp-source", "worker peak RSS MB", "1st mail"]
    print(table(rows, headers))
    one = [m for m in measured if m.workers == 1]
    if one:
        ratio = statistics.median(m.ratio for m in one)
        rate = statistics.median(m.result.rate for m in one)
        rss = max((r or 0.0) for m in one for r in m.result.peak_rss_mb)
        print(
            f"\ntargets (1 worker): ≥ 0.80 × raw → {ratio:.2f}; ≥ 10× apprise (aim 30×) → "
            f"{_ratio(rate, apprise_rate)}; worker RSS < 250 MB at 100k → {rss:.0f} MB at {n:,}"
        )
    print(f"machine after: {machine_note()}")


def _x(value: float, reference: float | None) -> str:
    return "-" if not reference else f"{value / reference:.2f}"


def _ratio(value: float, reference: float | None) -> str:
    return "-" if not reference else f"{value / reference:.0f}×"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def main(argv: list[str] | None = None) -> int:
    return run(main_async, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
