"""Every shipped language is complete: each message the sources use has a translation."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster import i18n
from broadcaster.i18n import catalogs


def test_every_catalog_translates_every_message() -> None:
    gaps = catalogs.missing()
    listed = "\n".join(f"{g.language}/{g.domain}: {g.msgid!r}" for g in gaps[:40])
    assert not gaps, f"{len(gaps)} untranslated (python -m broadcaster.i18n.catalogs update, then translate):\n{listed}"


def test_four_languages_ship() -> None:
    assert set(i18n.shipped_languages()) >= {"en", "fr", "de", "es"}


def test_a_message_removed_from_one_catalog_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = catalogs.po_path("fr", "labels")
    catalog = catalogs.read(source, "fr", "labels")
    catalog.delete("Partial outage")
    monkeypatch.setattr(catalogs, "po_path", lambda language, domain: tmp_path / f"{language}-{domain}.po")
    for language in ("fr",):
        for domain in catalogs.DOMAINS:
            original = catalogs.read(source.parent / f"{domain}.po", language, domain)
            catalogs.write(tmp_path / f"{language}-{domain}.po", catalog if domain == "labels" else original)
    gaps = catalogs.missing(["fr"])
    assert [(g.domain, g.msgid) for g in gaps] == [("labels", "Partial outage")]


def test_labels_follow_the_current_language() -> None:
    from broadcaster.i18n.labels import label

    with i18n.using("de"):
        assert label("major_outage") == "Schwerer Ausfall"
    assert label("major_outage") == "Major outage"
