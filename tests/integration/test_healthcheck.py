"""The container health checks compose runs: web, worker (per host) and database."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from broadcaster.config import Settings
from broadcaster.healthcheck import database_answers, main, web_answers, worker_alive
from sandbox.serve import serve_app
from tests.conftest import make_settings
from tests.support.worker_process import WorkerProcess


async def test_worker_check_follows_this_hosts_worker(settings: Settings, tmp_path: Path) -> None:
    assert not await worker_alive(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        # Starting up takes what it takes on a busy machine; the heartbeat comes before any job.
        deadline = time.monotonic() + 60
        while not await worker_alive(settings):
            assert worker.process is not None and worker.process.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker never reported"
            await asyncio.sleep(0.1)
        assert not await worker_alive(settings, host="some-other-container")
        # A clean stop deletes the heartbeat on the way out: no waiting for a key to expire.
        _, status = worker.terminate(timeout_s=120)
    finally:
        worker.stop()
    assert status == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert not await worker_alive(settings), "a stopped worker must fail its check"


async def test_database_and_web_checks(settings: Settings, app) -> None:  # type: ignore[no-untyped-def]
    assert await database_answers(settings)
    async with serve_app(app) as base:
        assert await asyncio.to_thread(web_answers, f"{base}/healthz")


def test_cli_exit_status_when_nothing_answers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    broken = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none", redis_url="redis://127.0.0.1:1/0")
    monkeypatch.setattr("broadcaster.healthcheck.get_settings", lambda: broken)
    assert main(["worker"]) == 1
    assert main(["web", "--url", "http://127.0.0.1:1/healthz"]) == 1
    assert main(["database"]) == 1
