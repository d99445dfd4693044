"""Status page throughput: the app (uvicorn, granian) against nginx serving the exported page.

Measures ``GET /`` and ``GET /api/v2/summary.json`` with wrk (``-c`` concurrent clients)
against three servers started in the same run on the same seeded page: the app on uvicorn,
the app on granian (one worker each), and nginx (one worker, ``sendfile on``,
``keepalive_requests 100000``) serving ``broadcaster export-static`` of that page. Prints
requests/s, p50 and p99 latency and each figure's ratio to nginx. Then, on each app server, ``GET /``
with the requests spread over en/fr/de/es by ``Accept-Language`` against all in English (four
languages cached should be within 5 % of one; ``bench/_page_languages.py``). Last, the first
contentful paint of ``/`` in headless Chromium, the app against nginx's static file
(``bench/_page_paint.py``).

    python bench/status_page.py            # quick: 4 s per run (about a minute in all)
    python bench/status_page.py --full     # 15 s per run
    python bench/status_page.py --duration 8 --connections 200

Needs Redis (the app listens to its bus), ``wrk`` and ``nginx`` (Debian ``wrk``, ``nginx-light``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _page_languages as languages  # noqa: E402
from bench import _page_paint as paint  # noqa: E402
from broadcaster.actors import Actor  # noqa: E402
from broadcaster.cli import granian_argv  # noqa: E402
from broadcaster.config import Settings  # noqa: E402
from broadcaster.db import make_engine  # noqa: E402
from broadcaster.db.migrate import upgrade  # noqa: E402
from broadcaster.post_requests import request_from_body  # noqa: E402
from broadcaster.posting import post  # noqa: E402
from broadcaster.runtime import Runtime  # noqa: E402

PATHS = ["/", "/api/v2/summary.json"]
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
{user}
events {{ worker_connections 8192; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000;
  keepalive_timeout 65;
  open_file_cache max=1000;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    root {root};
    index index.html;
    location / {{ try_files $uri $uri.html $uri/index.html =404; }}
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed(settings: Settings, incidents: int) -> None:
    """A realistic page: grouped components, open and resolved incidents, several updates each."""
    from broadcaster.domain.components import create_component
    from broadcaster.schemas import ComponentIn

    rt = Runtime.build(settings)
    try:
        ids = []
        async with rt.engine.begin() as conn:
            for name, group in [
                ("Website", None),
                ("API", "Platform"),
                ("Dashboard", "Platform"),
                ("Payments", "Platform"),
                ("Email delivery", "Notifications"),
                ("SMS delivery", "Notifications"),
                ("Contact centre", None),
            ]:
                ids.append((await create_component(conn, ComponentIn(name=name, group=group)))["id"])
        for number in range(incidents):
            result = await post(
                rt,
                request_from_body(
                    {
                        "title": f"Elevated error rates on the API ({number + 1})",
                        "status": "investigating",
                        "message": "We are investigating **elevated error rates** on the API and slow dashboard loads. "
                        "Payments are not affected. Next update within 30 minutes.",
                        "components": {ids[1]: "partial_outage", ids[2]: "degraded_performance"},
                    }
                ),
                actor=Actor.system("bench"),
            )
            assert result.ref is not None
            for status in ("identified", "monitoring") + (("resolved",) if number else ()):
                await post(
                    rt,
                    request_from_body(
                        {
                            "status": status,
                            "message": f"The incident is now {status}: a faulty database failover was rolled back and "
                            "error rates are falling.",
                        },
                        result.ref["incident_id"],
                    ),
                    actor=Actor.system("bench"),
                )
    finally:
        await rt.aclose()


def parse_wrk(output: str) -> dict[str, float]:
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        return float(match.group(1)) * units[match.group(2)] if match else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency("50%"),
        "p99": latency("99%"),
        "non2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors and "timeout 0" not in socket_errors.group(1) else 0.0,
    }


def wrk(url: str, duration_s: int, connections: int, threads: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def wait_ready(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start(stack: ExitStack, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    stack.callback(stop)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="3 rounds of 10 s runs instead of 2 rounds of 3 s")
    parser.add_argument("--rounds", type=int, help="rounds; each round runs every server once, interleaved")
    parser.add_argument("--duration", type=int, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--incidents", type=int, default=6, help="incidents on the seeded page")
    parser.add_argument("--paint-samples", type=int, default=9, help="first visits in Chromium per server (0: none)")
    parser.add_argument("--redis-url", default=os.environ.get("BROADCASTER_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    duration = args.duration or (10 if args.full else 3)
    rounds = args.rounds or (3 if args.full else 2)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} not found (apt-get install wrk nginx-light)", file=sys.stderr)
            return 2

    tmp = Path(tempfile.mkdtemp(prefix="bench-status-"))
    os.chmod(tmp, 0o755)
    env = {
        **os.environ,
        "BROADCASTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
        "BROADCASTER_REDIS_URL": args.redis_url,
        "BROADCASTER_QUEUE_NAME": f"broadcaster:bench:{os.getpid()}",
        "BROADCASTER_PUBLIC_URL": "http://127.0.0.1",
        "BROADCASTER_PAGE_NAME": "Bench Status",
        "BROADCASTER_LOG_FORMAT": "text",
        "PYTHONPATH": str(ROOT),
    }
    settings = Settings(
        _env_file=None,
        database_url=env["BROADCASTER_DATABASE_URL"],  # type: ignore[call-arg]
        redis_url=args.redis_url,
        queue_name=env["BROADCASTER_QUEUE_NAME"],
        public_url="http://127.0.0.1",
        page_name="Bench Status",
    )
    upgrade(settings.database_url)
    asyncio.run(seed(settings, args.incidents))

    from status_page.public.static_export import export_site

    async def export() -> int:
        engine = make_engine(settings.database_url)
        try:
            return await export_site(settings, engine, tmp / "site")
        finally:
            await engine.dispose()

    asyncio.run(export())
    for directory, _, files in os.walk(tmp / "site"):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(Path(directory) / name, 0o644)
    page_bytes = (tmp / "site" / "index.html").stat().st_size
    summary_bytes = (tmp / "site" / "api/v2/summary.json").stat().st_size

    ports = {"nginx": free_port(), "uvicorn": free_port(), "granian": free_port()}
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, root=tmp / "site", port=ports["nginx"], user=user))
    py = sys.executable
    commands = {
        "nginx": ["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp), "-e", str(tmp / "nginx-error.log")],
        "uvicorn": [
            py,
            "-m",
            "uvicorn",
            "status_page.app:create_served_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["uvicorn"]),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        # what ``broadcaster serve`` runs (RSGI), minus its log configuration
        "granian": [
            *granian_argv("127.0.0.1", ports["granian"], 1),
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
    }
    results: dict[tuple[str, str], dict[str, float]] = {}
    with ExitStack() as stack:
        for name, argv in commands.items():
            start(stack, argv, env, tmp / f"{name}.log")
        for port in ports.values():
            wait_ready(f"http://127.0.0.1:{port}/")
        print(
            f"page: {page_bytes} bytes, summary.json: {summary_bytes} bytes; wrk -t{args.threads} "
            f"-c{args.connections} -d{duration}s --latency, {rounds} interleaved rounds (median shown); "
            f"one worker per server; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}"
        )
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        by_language: dict[str, list[dict[str, dict[str, float]]]] = {}
        # Interleaved rounds: load from elsewhere on the machine hits every server alike.
        for round_number in range(rounds):
            for path in PATHS:
                for name, port in ports.items():
                    url = f"http://127.0.0.1:{port}{path}"
                    wrk(url, 1, args.connections, args.threads)  # warm-up
                    runs.setdefault((name, path), []).append(wrk(url, duration, args.connections, args.threads))
            for name in ("uvicorn", "granian"):
                url = f"http://127.0.0.1:{ports[name]}/"
                measured_pair = languages.measure(
                    tmp, url, duration, args.connections, args.threads, parse_wrk, four_first=round_number % 2 == 1
                )
                by_language.setdefault(name, []).append(measured_pair)
        painted = None
        if args.paint_samples:
            painted = paint.measure(
                {
                    "app on granian": f"http://127.0.0.1:{ports['granian']}/",
                    "nginx (static file)": f"http://127.0.0.1:{ports['nginx']}/",
                },
                args.paint_samples,
            )
        for key, measured in runs.items():
            measured.sort(key=lambda r: r["rps"])
            results[key] = measured[len(measured) // 2]  # the median round (the better one of two)
    shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'server':<9} {'path':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}  notes")
    for path in PATHS:
        reference = results[("nginx", path)]["rps"] or 1.0
        for name in ports:
            r = results[(name, path)]
            notes = []
            if r["non2xx"]:
                notes.append(f"{int(r['non2xx'])} non-2xx")
            if r["socket_errors"]:
                notes.append("socket timeouts")
            label = "nginx (static export)" if name == "nginx" else f"app on {name}"
            print(
                f"{name:<9} {path:<22} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                f"{r['rps'] / reference:>7.2f}  {label}{'; ' + ', '.join(notes) if notes else ''}"
            )
    print(
        "\nratio = app req/s / nginx req/s on the same path, same run. Target: >= 0.30 with p99 < 50 ms "
        "(aim: >= 0.75, p99 <= 2x nginx)."
    )
    languages.report(by_language)
    paint.report(painted, "nginx (static file)")
    best = {name: min(results[(name, p)]["rps"] for p in PATHS) for name in ("uvicorn", "granian")}
    winner = max(best, key=lambda n: best[n])
    print(
        f"faster app server here: {winner} (worst-path req/s: uvicorn {best['uvicorn']:.0f}, "
        f"granian {best['granian']:.0f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
