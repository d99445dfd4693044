"""Sandbox settings never run behind a real page: ``serve`` and ``worker`` refuse them off loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.errors import ConfigError
from broadcaster.security import check_sandbox
from tests.security.test_secret_key import LONG_KEY, clean_env, run

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
