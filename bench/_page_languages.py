"""The status page bench's language measurement (issue 23, acceptance 5): ``GET /`` with the
requests spread over four languages by ``Accept-Language`` against every request in English, with
the same wrk, the same Lua request function (one language or four) and the same server in one run.
Each language's page is built once and then served from the cache: the figures should be within 5 %.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

ONE = ("en",)
FOUR = ("en", "fr", "de", "es")
TARGET_RATIO = 0.95
LUA = """
local languages = {{{languages}}}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", nil, {{["Accept-Language"] = languages[n % #languages + 1]}})
end
"""


def script(tmp: Path, languages: Sequence[str]) -> Path:
    """A wrk Lua script cycling through ``languages`` (one request each in turn, per thread)."""
    path = tmp / f"languages-{'-'.join(languages)}.lua"
    path.write_text(LUA.format(languages=", ".join(f'"{code}"' for code in languages)))
    return path


def wrk_with(script_path: Path, url: str, duration_s: int, connections: int, threads: int) -> str:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s", str(script_path), url]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def measure(
    tmp: Path,
    url: str,
    duration_s: int,
    connections: int,
    threads: int,
    parse: Callable[[str], dict[str, float]],
    four_first: bool = False,
) -> dict[str, dict[str, float]]:
    """One pair of runs, each after a 1 s warm-up (which also builds each language's page);
    ``four_first`` swaps their order (alternate it between rounds: what runs second is favoured)."""
    results: dict[str, dict[str, float]] = {}
    pair = (("one", ONE), ("four", FOUR))
    for label, languages in reversed(pair) if four_first else pair:
        path = script(tmp, languages)
        wrk_with(path, url, 1, connections, threads)
        results[label] = parse(wrk_with(path, url, duration_s, connections, threads))
    return results


def report(results: dict[str, list[dict[str, dict[str, float]]]]) -> None:
    """Per server: the median round's req/s in English only and over four languages, and their ratio."""
    print(f"\n{'server':<9} {'GET / in':<26} {'req/s':>9} {'p99 ms':>8}")
    for name, rounds in results.items():
        one = sorted((r["one"] for r in rounds), key=lambda r: r["rps"])[len(rounds) // 2]
        four = sorted((r["four"] for r in rounds), key=lambda r: r["rps"])[len(rounds) // 2]
        print(f"{name:<9} {'en only':<26} {one['rps']:>9.0f} {one['p99']:>8.2f}")
        print(f"{name:<9} {'en/fr/de/es by Accept-Lang':<26} {four['rps']:>9.0f} {four['p99']:>8.2f}")
        ratio = four["rps"] / (one["rps"] or 1.0)
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        print(f"{name:<9} four languages / one: {ratio:.3f} ({verdict} the target: >= {TARGET_RATIO}, within 5 %)")
