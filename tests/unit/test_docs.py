"""docs/ stays in step with the code: every setting (the core's and each channel's) documented with its real default."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr

from broadcaster.config import PROJECT_ROOT
from broadcaster.delivery.registry import BUILTIN_CHANNELS, channel_classes, setting_fields

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROW = re.compile(r"^\| `BROADCASTER_([A-Z0-9_]+)` \| `([^`]*)` \|", re.M)


def shown_default(value: object) -> str:
    if value is None or value == "":  # unset either way
        return "—"
    if isinstance(value, SecretStr):
        return "(dev value)"
    if isinstance(value, Path):
        return str(value.relative_to(PROJECT_ROOT)) if value.is_relative_to(PROJECT_ROOT) else str(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_every_setting_is_documented_with_its_default() -> None:
    rows = {name.lower(): default for name, default in ROW.findall((DOCS / "configuration.md").read_text())}
    # The core's and every channel of this distribution's: the built-ins and the mirror, which the web
    # app's package registers as an entry point (a third party's plug-in documents its own).
    ours = {n: c for n, c in channel_classes().items() if c.__module__.partition(".")[0] in ("channels", "status_page")}
    assert len(ours) == len(BUILTIN_CHANNELS) + 1
    fields = setting_fields(ours)
    assert {"smtp_host", "twilio_auth_token", "zendesk_api_token", "webhook_timeout_s"} <= set(fields)
    missing = set(fields) - set(rows)
    assert not missing, f"docs/configuration.md lacks {sorted(f'BROADCASTER_{m.upper()}' for m in missing)}"
    stale = set(rows) - set(fields)
    assert not stale, f"docs/configuration.md documents settings that do not exist: {sorted(stale)}"
    for name, field in fields.items():
        assert rows[name] == shown_default(field.default), (
            f"BROADCASTER_{name.upper()}: default is {shown_default(field.default)!r}, docs say {rows[name]!r}"
        )


def test_docs_exist_and_link_to_each_other() -> None:
    names = {"deploying.md", "configuration.md", "channels.md", "scaling.md", "backups.md", "upgrading.md", "api.md"}
    assert names <= {p.name for p in DOCS.glob("*.md")}
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([a-z_-]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (DOCS / target).exists(), f"{page.name} links to missing {target}"


def test_the_write_a_channel_example_is_the_tested_plugin() -> None:
    """docs/channels.md's example is the plug-in the suite installs and holds to the contract."""
    section = (DOCS / "channels.md").read_text().partition("## Write a channel")[2]
    [example] = re.findall(r"```python\n(.*?)```", section, re.S)
    assert example == (PROJECT_ROOT / "tests/fixtures/plugin_channel/broadcaster_echo.py").read_text()
    assert 'echo = "broadcaster_echo:EchoChannel"' in section
