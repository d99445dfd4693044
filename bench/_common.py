"""Shared helpers of the benchmarks: a throw-away database, fast seeding, real processes.

A bench runs the project the way production does: ``broadcaster serve`` and
``broadcaster worker`` as OS processes configured through ``BROADCASTER_*`` variables,
a real Redis, a real database; it posts through the admin API and times until the ledger
shows every row done. Nothing here is imported by the project itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.db import deliveries, make_engine, subscribers, utcnow
from broadcaster.db.migrate import upgrade
from broadcaster.domain.tokens import create_token

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("BROADCASTER_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BROADCASTER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DONE_STATES = ("sent", "failed")


# --- machine ------------------------------------------------------------------------------------


def machine_note() -> str:
    """Cores, load average and Python: what a figure needs next to it."""
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (``VmHWM``) in MiB, read while it still runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- database -----------------------------------------------------------------------------------


def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` in a thread of its own: alembic and ``asyncio.run`` want a loop of their own."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@contextlib.contextmanager
def temp_database(backend: str, workdir: Path) -> Iterator[str]:
    """A new, migrated database (``sqlite`` file in ``workdir`` or a ``postgres`` database); dropped after."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        _in_thread(upgrade, url)
        yield url
        return
    if backend != "postgres":
        raise ValueError(f"unknown database backend {backend!r}")
    import asyncpg

    name = f"bc_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(asyncio.run, admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        _in_thread(upgrade, url)
        yield url
    finally:
        _in_thread(asyncio.run, admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def seed_subscribers(
    engine: AsyncEngine, channel: str, count: int, address: Callable[[int], str], chunk: int = 5000
) -> float:
    """Insert ``count`` confirmed subscribers in bulk (executemany); returns the seconds it took."""
    started = time.perf_counter()
    now = utcnow()
    for start in range(0, count, chunk):
        rows = [
            {
                "id": f"{channel[:1]}{i:011d}",
                "channel": channel,
                "address": address(i),
                "confirmed": True,
                "confirmed_at": now,
                "created_at": now,
                "drill": False,
                "meta": {},
            }
            for i in range(start, min(count, start + chunk))
        ]
        async with engine.begin() as conn:
            await conn.execute(subscribers.insert(), rows)
    return time.perf_counter() - started


async def api_token(engine: AsyncEngine) -> str:
    async with engine.begin() as conn:
        return await create_token(conn, f"bench-{uuid.uuid4().hex[:6]}")


async def ledger_counts(engine: AsyncEngine, update_id: str, channel: str) -> dict[str, int]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(deliveries.c.state, func.count())
            .where(deliveries.c.update_id == update_id, deliveries.c.channel == channel)
            .group_by(deliveries.c.state)
        )
        return {str(state): int(n) for state, n in result.all()}


# --- processes ----------------------------------------------------------------------------------


def bench_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """The environment of a project process: ours minus any ``BROADCASTER_*``, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    for name, value in settings.items():
        env[f"BROADCASTER_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@dataclass
class Process:
    """A child process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    cwd: Path
    popen: subprocess.Popen[bytes] | None = None
    log_offset: int = 0  # where this run's output starts in a log an earlier run of the same name wrote to

    def start(self) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.log_offset = log.tell()
        self.popen = subprocess.Popen(list(self.argv), env=dict(self.env), cwd=self.cwd, stdout=log, stderr=log)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        """What this run wrote to its log (not an earlier run's lines: ``wait_log`` must not see those)."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def wait_log(self, needle: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            if not self.alive():
                raise RuntimeError(f"{self.argv} exited: {self.log_text()[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.argv} did not log {needle!r} in {timeout_s} s")

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self.popen = None


def project_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "broadcaster.cli", *args]


@dataclass
class Stack:
    """A work directory, a database and the project's processes of one bench run."""

    backend: str = "sqlite"
    settings: dict[str, Any] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bc-bench-")))
    processes: list[Process] = field(default_factory=list)
    keep: bool = False

    def env(self) -> dict[str, str]:
        return bench_env(self.settings)

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Process:
        process = Process(argv, env or self.env(), self.workdir / f"{name}.log", self.workdir).start()
        self.processes.append(process)
        return process

    def serve(self) -> str:
        """``broadcaster serve`` on a free port; returns its base URL once it answers."""
        port = free_port()
        process = self.spawn("serve", project_command("serve", "--port", str(port)))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code < 500:
                    return base
            if not process.alive():
                raise RuntimeError(f"broadcaster serve exited: {process.log_text()[-2000:]}")
            time.sleep(0.1)
        raise TimeoutError("broadcaster serve did not answer /healthz")

    def workers(self, count: int, tag: str) -> list[Process]:
        """``count`` ``broadcaster worker`` processes, returned once each has started."""
        started = [self.spawn(f"worker-{tag}-{i}", project_command("worker")) for i in range(count)]
        for process in started:
            process.wait_log(" started")  # "worker <id> started" (arq's own "Starting worker" is DEBUG now)
        return started

    def stop(self, processes: Sequence[Process] | None = None) -> None:
        for process in list(processes if processes is not None else self.processes):
            process.stop()
            with contextlib.suppress(ValueError):
                self.processes.remove(process)

    def close(self) -> None:
        self.stop()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def clear_queue(redis_url: str, queue_name: str) -> None:
    """Drop what a bench left in Redis under its own queue name."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        await redis.delete(queue_name, f"{queue_name}:health-check")
    finally:
        await redis.aclose()


def queue_name() -> str:
    return f"broadcaster:bench:{uuid.uuid4().hex[:10]}"


# --- posting and waiting ------------------------------------------------------------------------


@dataclass
class Round:
    """One timed post: POST until the ledger shows every row done."""

    update_id: str
    expected: int
    seconds: float
    counts: dict[str, int]
    sink_seconds: float | None = None  # POST to the receiver's count reaching ``expected``
    first_seconds: float | None = None  # POST returned to the receiver's first accepted message
    peak_rss_mb: list[float | None] = field(default_factory=list)
    worker_cpu_s: float | None = None  # CPU the workers used during the round, all together

    @property
    def cpu_us_per_message(self) -> float | None:
        return None if self.worker_cpu_s is None or not self.sent else self.worker_cpu_s / self.sent * 1e6

    @property
    def sent(self) -> int:
        return self.counts.get("sent", 0)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


async def post_and_wait(
    base_url: str,
    token: str,
    engine: AsyncEngine,
    channel: str,
    expected: int,
    title: str,
    received: Callable[[], int | None] | None = None,
    timeout_s: float = 1800.0,
    poll_s: float = 0.2,
) -> Round:
    """POST a new incident to ``channel`` through the admin API and time until its ledger is done.

    ``received`` (optional) reads the receiver's own count of accepted messages since the
    round began; the round then also notes when it reached ``expected``.
    """
    body = {
        "title": title,
        "status": "investigating",
        "impact": "minor",
        "channels": [channel],
        "message": "We are investigating elevated error rates on the API. Next update in 30 minutes.",
    }
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as client:
        started = time.perf_counter()
        response = await client.post("/api/v1/incidents", json=body, timeout=30)
    returned = time.perf_counter()
    response.raise_for_status()
    update_id = str(response.json()["update"]["id"])
    sink_seconds: float | None = None
    first_seconds: float | None = None
    deadline = started + timeout_s
    counts: dict[str, int] = {}
    while time.perf_counter() < deadline:
        if received is not None and sink_seconds is None:
            got = received()
            if got and first_seconds is None:
                first_seconds = time.perf_counter() - returned
            if got is not None and got >= expected:
                sink_seconds = time.perf_counter() - started
            elif got is not None and got < expected * 0.98:
                # cheap check first: the ledger cannot be done before the receiver has it all
                await asyncio.sleep(poll_s / 4 if got else 0.005)
                continue
        counts = await ledger_counts(engine, update_id, channel)
        done = sum(counts.get(s, 0) for s in DONE_STATES)
        if done >= expected and sum(counts.values()) >= expected:
            seconds = time.perf_counter() - started
            return Round(update_id, expected, seconds, counts, sink_seconds, first_seconds)
        await asyncio.sleep(poll_s)
    raise TimeoutError(f"update {update_id}: ledger {counts} after {timeout_s} s")


@contextlib.asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


# --- output -------------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table, columns padded; numbers right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        padded = (c.rjust(w) if n and _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True))
        lines.append("  ".join(padded).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("×", "").replace("%", "").lstrip("-").isdigit()
