"""``broadcaster up``: the whole product on one laptop, with the sandbox standing in for the world.

It starts the sandbox (``python -m sandbox``: local servers speaking SMTP, Twilio, Mastodon,
Bluesky, X, Zendesk, Freshdesk and a webhook receiver), points every channel at it, migrates,
seeds the demo (with subscribers at sandbox addresses), then runs a worker and the web app
until interrupted. ``--no-sandbox`` uses the channels as configured instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx

from broadcaster.commands import COMMANDS, command
from broadcaster.config import Settings
from broadcaster.logs import configure_logging
from broadcaster.security import is_loopback_http

SANDBOX_READY_S = 15.0


def _up_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-sandbox", action="store_true", help="use the channels as configured, not the sandbox")
    parser.add_argument("--sandbox-port", type=int, default=8025, help="the sandbox's HTTP port (SMTP: one above)")
    parser.add_argument("--verbose", action="store_true", help="log everything (BROADCASTER_LOG_LEVEL=DEBUG)")


def _start_sandbox(port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """The sandbox child process, ready, and the settings pointing every channel at it."""
    from sandbox.config import channel_environment

    base_url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port), "--smtp-port", str(port + 1)],
        env=env,
        process_group=0,
    )
    deadline = time.monotonic() + SANDBOX_READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the sandbox did not start (ports {port}, {port + 1} taken? try --sandbox-port)")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return proc, channel_environment(base_url, port + 1)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"error: the sandbox did not answer on {base_url} within {SANDBOX_READY_S:.0f} s")


@command("up", "run everything on this machine (sandbox providers, demo, web + worker) for a look", _up_args)
def up(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.demo import with_kept_secret

    settings, secret_path = with_kept_secret(settings)  # no key set: a random one, kept for next time
    env = {**os.environ, "BROADCASTER_SECRET_KEY": settings.secret_key.get_secret_value()}
    if args.verbose:  # this process (migrations, demo seeding) and its children alike
        env["BROADCASTER_LOG_LEVEL"] = "DEBUG"
        configure_logging(settings.log_format, "DEBUG")
    procs: list[subprocess.Popen[bytes]] = []
    sandbox_url = ""
    if not args.no_sandbox:
        if not is_loopback_http(settings.public_url):
            print(
                f"error: the sandbox runs only behind a loopback page, not {settings.public_url}; use --no-sandbox",
                file=sys.stderr,
            )
            return 2
        sandbox, sandbox_env = _start_sandbox(args.sandbox_port, env)
        procs.append(sandbox)
        env.update(sandbox_env)
        sandbox_url = sandbox_env["BROADCASTER_SANDBOX_URL"]
        os.environ.update(sandbox_env)  # the demo seeding below posts to the sandboxed channels
        settings = Settings().model_copy(update={"secret_key": settings.secret_key})
    COMMANDS["migrate"][1](args, settings)
    COMMANDS["demo"][1](args, settings)
    base = [sys.executable, "-m", "broadcaster.cli"]
    # Own process groups: a Ctrl-C in the terminal reaches only this process, which stops the
    # children in order (a web server's workers hit directly would report an "unexpected exit").
    procs.append(subprocess.Popen([*base, "worker"], env=env, process_group=0))
    web = [*base, "serve", "--host", args.host, "--port", str(args.port)]
    procs.append(subprocess.Popen(web, env=env, process_group=0))
    site = f"http://{args.host}:{args.port}"
    if secret_path is not None:
        print(f"secret key   kept in {secret_path} (0600; set BROADCASTER_SECRET_KEY to use your own)")
    print(f"status page  {site}/")
    print(f"console      {site}/console")
    if sandbox_url:
        print(f"sandbox      {site}/console/sandbox  (what each channel received; nothing leaves this machine)")
    print(f"agent desk   {site}/desk")
    print(f"summary API  {site}/api/v2/summary.json")
    print(f"health       {site}/healthz")
    return _run_until_stopped(procs)


def _run_until_stopped(procs: list[subprocess.Popen[bytes]]) -> int:
    """Wait until one child exits or a signal comes; then stop them all, the sandbox last."""

    def stop(*_: Any) -> None:
        for proc in reversed(procs):  # web and worker first: they may still be sending to the sandbox
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
    finally:
        stop()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return max(proc.returncode or 0 for proc in procs)
