"""Sandbox settings never run behind a real page: ``serve`` and ``worker`` refuse them off loopback."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from broadcaster.errors import ConfigError
from broadcaster.security import check_sandbox
from sandbox.serve import free_port
from tests.conftest import REDIS_URL
from tests.security.test_secret_key import CLI, LONG_KEY, clean_env, run

SANDBOX = "http://127.0.0.1:8025"


@pytest.mark.parametrize(
    ("sandbox", "public", "refused"),
    [
        ("", "https://status.example.com", False),
        (SANDBOX, "http://127.0.0.1:8000", False),
        (SANDBOX, "http://localhost:8000", False),
        (SANDBOX, "https://status.example.com", True),
        (SANDBOX, "http://192.0.2.10:8000", True),
        ("http://192.0.2.10:8025", "http://127.0.0.1:8000", True),  # the sandbox itself off loopback
    ],
)
def test_the_rule(sandbox: str, public: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ConfigError, match="BROADCASTER_SANDBOX_URL"):
            check_sandbox(sandbox, public)
    else:
        check_sandbox(sandbox, public)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker", "--burst"]])
def test_serve_and_worker_refuse_sandbox_settings_behind_a_public_url(command: list[str], tmp_path: Path) -> None:
    env = clean_env(
        BROADCASTER_PUBLIC_URL="https://status.example.com",
        BROADCASTER_SANDBOX_URL=SANDBOX,
        BROADCASTER_SECRET_KEY=LONG_KEY,
        BROADCASTER_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/b.db",
    )
    result = run(command, env, tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "BROADCASTER_SANDBOX_URL" in result.stderr and "https://status.example.com" in result.stderr


def test_up_starts_the_sandbox_on_the_port_asked_and_verbose_logs_everything(tmp_path: Path) -> None:
    """``broadcaster up --sandbox-port P --verbose``: the sandbox answers on P, SMTP on P + 1, DEBUG lines appear."""
    port, sandbox_port = free_port(), free_port()
    env = clean_env(
        BROADCASTER_PUBLIC_URL=f"http://127.0.0.1:{port}",
        BROADCASTER_REDIS_URL=REDIS_URL,
        BROADCASTER_QUEUE_NAME=f"broadcaster:test:{uuid.uuid4().hex[:12]}",
    )
    log_path = tmp_path / "up.log"
    command = [*CLI, "up", "--port", str(port), "--sandbox-port", str(sandbox_port), "--verbose"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            assert httpx.get(f"http://127.0.0.1:{sandbox_port}/healthz", timeout=5).text == "ok"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=40)
    output = log_path.read_text()
    assert f"sandbox      http://127.0.0.1:{port}/console/sandbox" in output, output[-2000:]
    assert " DEBUG " in output, "--verbose: everything, DEBUG included"
