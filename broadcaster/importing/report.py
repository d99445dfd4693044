"""What an import did, per kind: created, updated, unchanged, and skipped with why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from broadcaster.importing.model import Kind

SHOWN_REASONS = 10  # distinct skip reasons printed per kind; the rest are counted


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source id, why)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.skipped)


@dataclass
class Report:
    """Counts per kind (``Kind.ALL``); ``dry_run`` when nothing was kept."""

    label: str
    dry_run: bool = False
    tallies: dict[str, Tally] = field(default_factory=lambda: {kind: Tally() for kind in Kind.ALL})

    def created(self, kind: str) -> None:
        self.tallies[kind].created += 1

    def updated(self, kind: str) -> None:
        self.tallies[kind].updated += 1

    def unchanged(self, kind: str) -> None:
        self.tallies[kind].unchanged += 1

    def skipped(self, kind: str, source_id: str, why: str) -> None:
        self.tallies[kind].skipped.append((source_id, why))

    def counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {created, updated, unchanged, skipped}}`` for kinds that saw anything (the audit row's details)."""
        return {
            kind: {"created": t.created, "updated": t.updated, "unchanged": t.unchanged, "skipped": len(t.skipped)}
            for kind, t in self.tallies.items()
            if t.total
        }

    def lines(self) -> list[str]:
        """The report as printed: one line per kind, then the reasons for what was skipped."""
        head = f"{'dry run (nothing written): ' if self.dry_run else ''}import from {self.label}"
        out = [head]
        width = max(len(k) for k in Kind.ALL)
        for kind, t in self.tallies.items():
            if not t.total:
                continue
            out.append(
                f"  {kind.ljust(width)}  {t.created} created, {t.updated} updated, "
                f"{t.unchanged} unchanged, {len(t.skipped)} skipped"
            )
        for kind, t in self.tallies.items():
            reasons = Counter(why for _, why in t.skipped)
            for number, (why, count) in enumerate(reasons.most_common()):
                if number == SHOWN_REASONS:
                    rest = sum(c for _, c in reasons.most_common()[SHOWN_REASONS:])
                    out.append(f"  skipped {kind}: {rest} more, for other reasons")
                    break
                example = next(source_id for source_id, w in t.skipped if w == why)
                which = f"{count} ({example} and others)" if count > 1 else example
                out.append(f"  skipped {kind} {which}: {why}")
        return out
