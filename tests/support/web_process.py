"""``broadcaster serve`` as a real OS process, and a browser-like reader of its ``/events``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from broadcaster.config import Settings
from sandbox.serve import free_port
from tests.support.worker_process import settings_env, stop_process


class WebProcess:
    """``broadcaster serve --server SERVER`` on its own port."""

    def __init__(self, settings: Settings, log_path: Path, server: str = "granian", port: int | None = None) -> None:
        self.settings = settings
        self.server = server
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broadcaster.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--server",
                self.server,
            ],
            env=settings_env(self.settings),
            stdout=log,
            stderr=log,
        )

    async def wait_healthy(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, self.log_path.read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"web process on {self.url} never became healthy: {self.log_path.read_text()}")

    async def terminate(self, timeout_s: float = 30.0) -> float:
        """SIGTERM; the seconds until the process had exited (it is killed after ``timeout_s``)."""
        assert self.process is not None
        process, self.process = self.process, None
        started = time.monotonic()
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            return float("inf")
        return time.monotonic() - started

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


@dataclass(frozen=True)
class Seen:
    at: float  # time.monotonic() on arrival
    kind: str
    data: dict[str, Any]
    event_id: str | None


class EventStream:
    """Reads ``/events`` in the background as a browser does: each event stamped on arrival,
    the last ``id:`` kept, and ``reconnect`` resumes from it with ``Last-Event-ID``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[Seen] = []
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self.ended = asyncio.Event()  # the server ended the stream
        self.changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _read(self, url: str) -> None:
        headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(5, read=None)) as client,
                client.stream("GET", f"{url}/events", headers=headers) as response,
            ):
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                kind, data, event_id = "", "", None
                async for line in response.aiter_lines():
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if line == "":
                        if event_id is not None:
                            self.last_id = event_id
                        if data:
                            self.events.append(Seen(time.monotonic(), kind or "message", json.loads(data), event_id))
                            if kind == "ready":
                                self._ready.set()
                            self.changed.set()
                        kind, data, event_id = "", "", None
                    elif field == "id":
                        event_id = value
                    elif field == "event":
                        kind = value
                    elif field == "data":
                        data = value
                    elif field == "retry":
                        self.retry_ms = int(value)
        except httpx.HTTPError:
            pass  # the server went away mid-stream
        finally:
            self.ended.set()
            self.changed.set()

    async def connect(self, url: str | None = None, timeout_s: float = 10) -> None:
        """(Re)connect to ``url`` (default: the last one), resuming after ``last_id``; returns once ready."""
        await self.close()
        self.url = url or self.url
        self._ready.clear()
        self.ended.clear()
        self._task = asyncio.create_task(self._read(self.url))
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    def of(self, kind: str, **match: Any) -> list[Seen]:
        return [e for e in self.events if e.kind == kind and all(e.data.get(k) == v for k, v in match.items())]

    async def wait_for(self, kind: str, timeout_s: float, **match: Any) -> float:
        """The arrival time of the first ``kind`` event whose data contains ``match``."""
        deadline = time.monotonic() + timeout_s
        while True:
            if found := self.of(kind, **match):
                return found[0].at
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind} {match} event within {timeout_s} s on {self.url}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[EventStream]:
        await self.connect()
        try:
            yield self
        finally:
            await self.close()


def warnings_in(*logs: Path) -> list[str]:
    """The WARNING, ERROR and CRITICAL lines of these log files (and tracebacks)."""
    bad = (" WARNING ", " ERROR ", " CRITICAL ", "[WARNING]", "[ERROR]", "Traceback")
    return [
        f"{log.name}: {line}"
        for log in logs
        if log.exists()
        for line in log.read_text(errors="replace").splitlines()
        if any(b in line for b in bad)
    ]
