"""``broadcaster worker`` as a real OS process, configured through the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from broadcaster.config import Settings
from broadcaster.delivery.registry import setting_fields

SETTINGS_PASSED = (
    "database_url",
    "redis_url",
    "queue_name",
    "public_url",
    "page_name",
    "batch_size",
    "max_jobs",
    "job_timeout_s",
    "retry_base_s",
    "retry_max_s",
    "relay_interval_s",
    "sending_lease_s",
    "max_attempts",
    "webhook_allow_private",
    "log_level",
)


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    for name in SETTINGS_PASSED:
        value = getattr(settings, name)
        env[f"BROADCASTER_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env["BROADCASTER_SECRET_KEY"] = settings.secret_key.get_secret_value()
    channel_settings = set(settings.model_extra or {}) & set(setting_fields())  # not BROADCASTER_TEST_* and such
    for name, value in settings.extra_values(channel_settings).items():
        env[f"BROADCASTER_{name.upper()}"] = str(value)
    return env


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broadcaster.cli", "worker"], env=settings_env(self.settings), stdout=log, stderr=log
        )

    async def until_started(self, timeout_s: float = 20.0) -> None:
        """Return once the worker has logged its own ``worker <id> started`` line."""
        deadline = time.monotonic() + timeout_s
        while " started" not in self.log_path.read_text():
            assert time.monotonic() < deadline, self.log_path.read_text()[-2000:]
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, jobs cut off mid-flight."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def terminate(self, timeout_s: float = 60.0) -> tuple[float, int]:
        """SIGTERM and wait for the worker to stop by itself: (seconds it took, exit status)."""
        assert self.process is not None
        process, self.process = self.process, None
        started = time.monotonic()
        process.terminate()
        status = process.wait(timeout=timeout_s)
        return time.monotonic() - started, status

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 15 s."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
