"""Playbooks as YAML: the shipped sample round-trips unchanged through the CLI and the console."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from broadcaster.cli import COMMANDS, build_parser
from broadcaster.config import Settings
from broadcaster.crisis.playbook_yaml import SAMPLE_PATH
from broadcaster.runtime import Runtime
from tests.integration.test_console import login


def cli(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return COMMANDS[args.command][1](args, settings)


def without_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


def test_sample_round_trips_through_the_cli(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = SAMPLE_PATH.read_text(encoding="utf-8")
    data = yaml.safe_load(sample)
    assert {p["crisis_type"] for p in data["playbooks"]} == {
        "outage",
        "security_breach",
        "product_recall",
        "natural_disaster",
        "supply_disruption",
        "pr_incident",
        "custom",
    }
    assert cli(settings, "playbooks", "import", str(SAMPLE_PATH)) == 0
    assert "imported 7 playbooks" in capsys.readouterr().out
    first = tmp_path / "first.yaml"
    assert cli(settings, "playbooks", "export", str(first)) == 0
    assert yaml.safe_load(first.read_text()) == data, "export -> import changes nothing"
    assert first.read_text() == without_comments(sample), "byte for byte, but for the sample's comments"
    # Importing the export again (over the same names) and exporting once more: still identical.
    assert cli(settings, "playbooks", "import", str(first)) == 0
    second = tmp_path / "second.yaml"
    assert cli(settings, "playbooks", "export", str(second)) == 0
    assert second.read_text() == first.read_text()


async def test_console_upload_then_download_round_trips(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await login(client, runtime, "ic", "commander")
    sample = SAMPLE_PATH.read_bytes()
    uploaded = await client.post(
        "/console/playbooks/import",
        data={"csrf_token": csrf},
        files={"file": ("playbooks.yaml", sample, "application/yaml")},
    )
    assert uploaded.status_code == 303, uploaded.text
    listing = await client.get(uploaded.headers["location"])
    assert "Imported 7 playbooks" in listing.text and "Security breach" in listing.text
    download = await client.get("/console/playbooks/export.yaml")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="playbooks.yaml"'
    assert yaml.safe_load(download.text) == yaml.safe_load(sample)
    for bad, field in (
        (b"version: 2\n", "version"),
        (b"{not yaml", "file"),
        (b"version: 1\nplaybooks:\n- name: X\n  levels:\n  - level: 1\n", "playbooks[0].levels[0].name"),
        (
            b"version: 1\nplaybooks:\n- name: X\n  levels:\n  - {level: 1, name: a, title: b, message: c,"
            b" contacts: [Nobody]}\n",
            "playbooks[0].levels[0].contacts",
        ),
    ):
        response = await client.post(
            "/console/playbooks/import",
            data={"csrf_token": csrf},
            files={"file": ("bad.yaml", bad, "application/yaml")},
        )
        assert response.status_code == 422, (bad, response.text)
        assert field in response.json()["error"]["fields"], response.json()
    assert yaml.safe_load((await client.get("/console/playbooks/export.yaml")).text) == yaml.safe_load(sample), (
        "a refused file changes nothing"
    )
    no_csrf = await client.post("/console/playbooks/import", files={"file": ("p.yaml", sample, "application/yaml")})
    assert no_csrf.status_code == 403
