"""A third-party channel from an installed distribution: found through the ``broadcaster.channels``
entry points, enabled by its own settings, and held to the same contract test as the built-ins.

``tests/fixtures/plugin_channel`` is the distribution (``broadcaster-echo``); pip installs it
offline into a temporary directory that is then put on the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from broadcaster.config import Settings
from broadcaster.delivery.registry import BUILTIN_CHANNELS, Registry, channel_classes
from broadcaster.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "plugin_channel"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture distribution pip-installed into a directory of its own (built from a copy: no build/ left)."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(FIXTURE, work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        timeout=120,
    )
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed))  # also invalidates importlib's caches
    yield installed
    sys.modules.pop("broadcaster_echo", None)


def test_the_distribution_declares_its_entry_point(installed: Path) -> None:
    [dist_info] = installed.glob("broadcaster_echo-*.dist-info")
    assert "[broadcaster.channels]\necho = broadcaster_echo:EchoChannel" in (dist_info / "entry_points.txt").read_text()


def test_not_installed_not_loaded() -> None:
    assert "echo" not in channel_classes()


async def test_the_registry_loads_and_enables_it(on_path: Path) -> None:
    classes = channel_classes()
    builtins = [f"{cls.__module__}:{cls.__name__}" for cls in list(classes.values())[: len(BUILTIN_CHANNELS)]]
    assert builtins == list(BUILTIN_CHANNELS)
    assert classes["echo"].__module__ == "broadcaster_echo"
    entry_points = list(classes)[len(BUILTIN_CHANNELS) :]
    assert "echo" in entry_points and "mirror" in entry_points, "built-ins first, then entry points (ours: mirror)"

    settings = Settings(_env_file=None, echo_url="https://echo.example.test/in", echo_token="t0ken")  # type: ignore[call-arg]
    registry = Registry.build(settings)
    try:
        assert type(registry.get("echo")).__name__ == "EchoChannel"
        assert "t0ken" not in repr(settings)
    finally:
        await registry.aclose()
    disabled = Registry.build(Settings(_env_file=None))  # type: ignore[call-arg]
    assert "echo" in disabled.classes and "echo" not in disabled.enabled
    with pytest.raises(ConfigError, match="BROADCASTER_ECHO_TOKEN"):
        Registry.build(Settings(_env_file=None, echo_url="https://echo.example.test/in"))  # type: ignore[call-arg]


def test_the_contract_test_passes_for_it(installed: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(installed), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "-k",
            "echo",
            "tests/unit/test_channel_contract.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = [line for line in result.stdout.splitlines() if line.startswith("PASSED") and "echo" in line]
    # facts, settings class, built by kind, disabled, half configured, 5 renders, 7 failures
    assert len(passed) == 17, result.stdout[-4000:]


class Incomplete:
    """A would-be channel that forgot most of the contract's facts."""

    name: ClassVar[str] = "incomplete"
    title: ClassVar[str] = "Incomplete"


def test_a_class_missing_facts_or_a_taken_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not declare kind, limit, limit_unit, notifies"):
        channel_classes(extra=[f"{__name__}:Incomplete"])
    with pytest.raises(ConfigError, match="two channels are named 'x'"):
        channel_classes(extra=["channels.x:XChannel"])
