"""``serve`` and ``worker`` refuse a guessable ``BROADCASTER_SECRET_KEY`` off loopback; ``up`` keeps a random one."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from broadcaster.config import Settings
from broadcaster.demo import SECRET_FILE_NAME, with_kept_secret
from broadcaster.errors import ConfigError
from broadcaster.security import DEFAULT_SECRET_KEY, check_secret_key
from sandbox.serve import free_port
from tests.conftest import REDIS_URL, make_settings
from tests.support.worker_process import settings_env, stop_process

CLI = [sys.executable, "-m", "broadcaster.cli"]
LONG_KEY = "k" * 32
SHORT_KEY = "k" * 31

# (key, public URL, refused, warned)
CASES = [
    (DEFAULT_SECRET_KEY, "https://status.example.com", True, False),
    (SHORT_KEY, "https://status.example.com", True, False),
    (SHORT_KEY, "http://status.example.com", True, False),
    (DEFAULT_SECRET_KEY, "http://192.0.2.10:8000", True, False),
    (DEFAULT_SECRET_KEY, "http://0.0.0.0:8000", True, False),
    (DEFAULT_SECRET_KEY, "https://127.0.0.1:8000", True, False),  # https: meant for others to reach
    (DEFAULT_SECRET_KEY, "http://127.0.0.1:8000", False, True),
    (SHORT_KEY, "http://localhost:8000", False, True),
    (SHORT_KEY, "http://[::1]:8000", False, True),
    (LONG_KEY, "https://status.example.com", False, False),
    ("é" * 16, "https://status.example.com", False, False),  # 32 bytes in UTF-8
]


@pytest.mark.parametrize(("key", "url", "refused", "warned"), CASES)
def test_the_rule(key: str, url: str, refused: bool, warned: bool) -> None:
    if refused:
        with pytest.raises(ConfigError, match="BROADCASTER_SECRET_KEY"):
            check_secret_key(key, url)
        return
    warning = check_secret_key(key, url)
    assert (warning is not None) == warned
    if warning:
        assert "BROADCASTER_SECRET_KEY" in warning and "\n" not in warning


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    return env | variables


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI; a process still running after 60 s has started, which the caller then sees as rc None."""
    process = subprocess.Popen(
        [*CLI, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"{args} started instead of refusing: {err[-2000:]}") from None
    return subprocess.CompletedProcess(args, process.returncode, out, err)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker", "--burst"]])
def test_default_key_with_a_public_https_url_refuses_to_start(command: list[str], tmp_path: Path) -> None:
    env = clean_env(
        BROADCASTER_PUBLIC_URL="https://status.example.com",
        BROADCASTER_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/b.db",
        BROADCASTER_REDIS_URL=REDIS_URL,
    )
    result = run(command, env, tmp_path)  # tmp_path as the working directory: no .env is read
    assert result.returncode != 0
    assert "BROADCASTER_SECRET_KEY" in result.stderr and "is the default" in result.stderr
    assert DEFAULT_SECRET_KEY not in result.stderr + result.stdout


def test_short_key_refused_too(tmp_path: Path) -> None:
    env = clean_env(BROADCASTER_PUBLIC_URL="https://status.example.com", BROADCASTER_SECRET_KEY=SHORT_KEY)
    result = run(["serve", "--port", "0"], env, tmp_path)
    assert result.returncode != 0 and "BROADCASTER_SECRET_KEY is shorter than 32 bytes" in result.stderr
    assert SHORT_KEY not in result.stderr, "the message never shows the key"


def test_loopback_http_starts_with_one_warning_line(settings: Settings, tmp_path: Path) -> None:
    env = settings_env(settings) | {
        "BROADCASTER_PUBLIC_URL": "http://127.0.0.1:8000",
        "BROADCASTER_SECRET_KEY": DEFAULT_SECRET_KEY,
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*CLI, "worker"], env=env, cwd=tmp_path, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while " started" not in log_path.read_text() and process.poll() is None:
                assert time.monotonic() < deadline, log_path.read_text()[-2000:]
                time.sleep(0.1)
            assert process.poll() is None, f"the worker exited: {log_path.read_text()[-2000:]}"
        finally:
            stop_process(process)
    lines = [line for line in log_path.read_text().splitlines() if "BROADCASTER_SECRET_KEY" in line]
    assert len(lines) == 1 and " WARNING " in lines[0], lines


def test_kept_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/data/broadcaster.db", secret_key=DEFAULT_SECRET_KEY)
    (tmp_path / "data").mkdir()
    first, path = with_kept_secret(settings)
    assert path == tmp_path / "data" / SECRET_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = first.secret_key.get_secret_value()
    assert check_secret_key(key, "https://status.example.com") is None
    again, _ = with_kept_secret(settings)
    assert again.secret_key.get_secret_value() == key, "the next run keeps the key (and sessions and links)"
    own, none = with_kept_secret(make_settings(settings.database_url, secret_key=LONG_KEY))
    assert none is None and own.secret_key.get_secret_value() == LONG_KEY, "a key of one's own is used as is"


def test_up_on_a_fresh_directory_serves_with_a_kept_key(tmp_path: Path) -> None:
    """``broadcaster up`` (what scripts/up.sh runs) with no key set and a URL off loopback: serve and worker start."""
    port = free_port()
    env = clean_env(
        BROADCASTER_PUBLIC_URL=f"http://192.0.2.10:{port}",
        BROADCASTER_REDIS_URL=REDIS_URL,
        BROADCASTER_QUEUE_NAME=f"broadcaster:test:{uuid.uuid4().hex[:12]}",
    )
    log_path = tmp_path / "up.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*CLI, "up", "--no-sandbox", "--port", str(port)], env=env, cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert status == 200, f"up never served /healthz (rc {process.poll()}): {log_path.read_text()[-3000:]}"
        assert (tmp_path / SECRET_FILE_NAME).exists()
        assert stat.S_IMODE((tmp_path / SECRET_FILE_NAME).stat().st_mode) == 0o600
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)
        log.close()
    output = log_path.read_text()
    assert f"secret key   kept in {tmp_path / SECRET_FILE_NAME}" in output
    assert "BROADCASTER_SECRET_KEY is" not in output, "neither serve nor worker complained about the key"
