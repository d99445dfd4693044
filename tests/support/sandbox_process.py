"""The sandbox as ``broadcaster up`` runs it: ``python -m sandbox`` in a child process, and the
settings that point every channel at it (``sandbox.config.channel_environment``)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from broadcaster.config import Settings
from sandbox.config import channel_environment
from sandbox.serve import free_port
from tests.conftest import make_settings


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    smtp_port: int

    def outbox(self, after: int = 0) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/outbox", params={"after": after}, timeout=5)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def stop(self) -> tuple[int, bytes, bytes]:
        self.process.terminate()  # SIGTERM
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, out, err


def start_sandbox(*extra: str) -> Running:
    port, smtp_port = free_port(), free_port()
    args = ["--host", "127.0.0.1", "--port", str(port), "--smtp-port", str(smtp_port), *extra]
    process = subprocess.Popen([sys.executable, "-m", "sandbox", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    running = Running(process, f"http://127.0.0.1:{port}", smtp_port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(f"{running.base_url}/healthz", timeout=1).text == "ok":
                return running
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the sandbox did not answer on {running.base_url} within 10 s")


def sandbox_settings(database_url: str, running: Running, **overrides: Any) -> Settings:
    """Test settings with every channel configured only by ``channel_environment``."""
    environment = channel_environment(running.base_url, running.smtp_port)
    values = {name.removeprefix("BROADCASTER_").lower(): value for name, value in environment.items()}
    return make_settings(database_url, **(values | overrides))
