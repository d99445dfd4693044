"""What every fault scenario shares: subscribers, real worker processes, the web app, and the count.

A scenario posts one update through the real web app (in-process), lets real
``broadcaster worker`` processes fan it out to a local receiver while the test breaks
something, then waits for the ledger to settle and compares, recipient by recipient, what
the receiver saw against what the ledger says was sent. ``REPORT`` collects one row per
scenario; ``tests/faults/conftest.py`` prints the table at the end of the run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import select

from broadcaster.config import Settings
from broadcaster.db import deliveries, make_engine
from broadcaster.delivery import ledger
from broadcaster.delivery.registry import setting_fields
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from broadcaster.schemas import SubscriberIn
from status_page.app import create_app
from tests.conftest import make_settings

# Outages last this long; BROADCASTER_FAULTS_LONG=1 runs them at the full length.
LONG = os.environ.get("BROADCASTER_FAULTS_LONG") == "1"
SMTP_OUTAGE_S = 60.0 if LONG else 6.0
DB_OUTAGE_S = 10.0


@dataclass
class Row:
    scenario: str
    recipients: int
    sent: int  # ledger rows in state sent
    received: int  # messages the receivers answered 2xx to, duplicates included
    lost: int  # recipients the ledger owed that never received anything
    duplicates: int  # received - distinct recipients received
    seconds: float
    after_fault_s: float | None = None  # from the fault (a restart, a kill) until every row was sent


REPORT: list[Row] = []


def fault_settings(database_url: str, **overrides: Any) -> Settings:
    """Fast retries, short leases, a quick circuit breaker, and never giving up during an outage."""
    values: dict[str, Any] = dict(
        # The lease equals the job timeout: a claim is taken back only once its job is surely dead.
        batch_size=25,
        log_level="DEBUG",  # the scenarios read the workers' batch lines
        max_jobs=4,
        job_timeout_s=6,
        sending_lease_s=6,
        relay_interval_s=1,
        retry_base_s=0.2,
        retry_max_s=1.0,
        max_attempts=500,
        circuit_failure_threshold=3,
        circuit_cooldown_s=1.0,
        webhook_timeout_s=2.0,
    )
    return make_settings(database_url, **(values | overrides))


def env_value(value: object) -> str:
    """A setting's value the way its ``BROADCASTER_*`` variable is written."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def worker_env(settings: Settings) -> dict[str, str]:
    """Every setting that is set, as ``BROADCASTER_*`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"BROADCASTER_{name.upper()}"] = env_value(value)
    channel_settings = set(settings.model_extra or {}) & set(setting_fields())  # not BROADCASTER_TEST_* and such
    for name, value in settings.extra_values(channel_settings).items():
        env[f"BROADCASTER_{name.upper()}"] = str(value)
    return env


class Worker:
    """``broadcaster worker`` as an OS process."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.env = worker_env(settings)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broadcaster.cli", "worker"], env=self.env, stdout=log, stderr=log
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    async def terminate(self, timeout_s: float) -> tuple[float, int]:
        """SIGTERM, then wait up to ``timeout_s`` for the worker to stop by itself: (seconds, exit status)."""
        assert self.process is not None
        process, self.process = self.process, None
        started = time.monotonic()
        process.terminate()
        status = await asyncio.to_thread(process.wait, timeout_s)
        return time.monotonic() - started, status

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval_s)
    return False


@dataclass
class Scenario:
    """One run: settings, subscribers, workers, the posted update, and a receiver's counter."""

    name: str
    settings: Settings
    channel: str
    workdir: Path
    received: Callable[[], Counter[str]]  # address -> times received (2xx answered)
    workers: list[Worker] = field(default_factory=list)
    update_id: str = ""
    addresses: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    fault_at: float | None = None  # ``mark_fault``: the moment "seconds after the fault" counts from
    settled_at: float | None = None

    def mark_fault(self) -> None:
        self.fault_at = time.monotonic()

    async def add_subscribers(self, addresses: list[str]) -> None:
        engine = make_engine(self.settings.database_url, pool=False)
        try:
            async with engine.begin() as conn:
                for address in addresses:
                    row, _ = await upsert_subscriber(
                        conn,
                        SubscriberIn(channel=self.channel, address=address, confirmed=True),
                        allow_private_webhooks=True,
                    )
                    self.addresses.append(str(row["address"]))
        finally:
            await engine.dispose()

    def start_workers(self, count: int = 1, settings: Settings | None = None) -> None:
        for _ in range(count):
            worker = Worker(settings or self.settings, self.workdir / f"worker{len(self.workers)}.log")
            worker.start()
            self.workers.append(worker)

    async def post(self, app_settings: Settings | None = None) -> None:
        """Post the update through the real web app (in-process), with a bearer token."""
        settings = app_settings or self.settings
        runtime = Runtime.build(settings)
        app = create_app(settings, runtime)
        try:
            async with (
                LifespanManager(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test") as client,
            ):
                async with runtime.engine.begin() as conn:
                    token = await create_token(conn, f"faults-{self.name}")
                response = await client.post(
                    "/api/v1/incidents",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "title": f"Fault drill: {self.name}",
                        "status": "investigating",
                        "impact": "major",
                        "message": "We are **investigating**.",
                        "channels": [self.channel],
                    },
                )
                assert response.status_code == 201, response.text
                self.update_id = response.json()["update"]["id"]
        finally:
            await runtime.aclose()

    def total_received(self) -> int:
        return sum(self.received().values())

    async def wait_received(self, at_least: int, timeout_s: float = 60) -> None:
        async def enough() -> bool:
            return self.total_received() >= at_least

        assert await wait_for(enough, timeout_s), f"{self.name}: only {self.total_received()} received"

    async def counts(self) -> dict[str, int]:
        engine = make_engine(self.settings.database_url, pool=False)
        try:
            async with engine.connect() as conn:
                return (await ledger.delivery_counts(conn, self.update_id)).get(self.channel, {})
        finally:
            await engine.dispose()

    async def settle(self, timeout_s: float = 90) -> None:
        """Wait until every ledger row is final and every recipient was sent to."""
        expected = len(self.addresses)

        async def done() -> bool:
            counts = await self.counts()
            return counts.get("total") == expected and counts.get("sent") == expected

        ok = await wait_for(done, timeout_s, 0.1)
        self.settled_at = time.monotonic()
        if not ok:
            logs = "\n".join(w.log_path.read_text()[-2000:] for w in self.workers if w.log_path.exists())
            raise AssertionError(f"{self.name}: ledger never settled: {await self.counts()}\n{logs}")
        await asyncio.sleep(0.5)  # anything still in flight lands

    async def verdict(self, max_duplicates: int) -> Row:
        """Compare receivers with the ledger; record and return the report row."""
        engine = make_engine(self.settings.database_url, pool=False)
        try:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(deliveries.c.address, deliveries.c.state).where(
                            deliveries.c.update_id == self.update_id, deliveries.c.channel == self.channel
                        )
                    )
                ).all()
        finally:
            await engine.dispose()
        ledger_sent = {str(a) for a, state in rows if state == "sent"}
        seen = self.received()
        owed = set(self.addresses)
        lost = owed - set(seen)
        after_fault = None if self.fault_at is None or self.settled_at is None else self.settled_at - self.fault_at
        row = Row(
            self.name,
            len(owed),
            len(ledger_sent),
            sum(seen.values()),
            len(lost),
            sum(seen.values()) - len(seen),
            round(time.monotonic() - self.started, 1),
            None if after_fault is None else round(after_fault, 1),
        )
        REPORT.append(row)
        print(f"\n{row}")
        assert len(rows) == len(owed), "one ledger row per recipient"
        assert ledger_sent == owed, "the ledger says every recipient was sent to"
        assert row.lost == 0, f"lost: {sorted(lost)[:5]}"
        assert set(seen) == ledger_sent, "receivers saw exactly what the ledger says was sent"
        assert set(seen) <= owed, "nobody outside the audience received anything"
        assert row.duplicates <= max_duplicates, f"{row.duplicates} duplicates > {max_duplicates} in flight"
        return row

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@asynccontextmanager
async def scenario(
    name: str, settings: Settings, channel: str, workdir: Path, received: Callable[[], Counter[str]]
) -> AsyncIterator[Scenario]:
    run = Scenario(name, settings, channel, workdir, received)
    try:
        yield run
    finally:
        run.stop()
