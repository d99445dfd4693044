"""The fault suite prints one report table: per scenario, sent, received, lost, duplicates."""

from __future__ import annotations

from typing import Any

from tests.faults.harness import LONG, REPORT, SMTP_OUTAGE_S


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault injection report")
    hint = "BROADCASTER_FAULTS_LONG=1" if LONG else "set BROADCASTER_FAULTS_LONG=1 for 60 s"
    write(f"SMTP outage {SMTP_OUTAGE_S:.0f} s ({hint})")
    header = (
        f"{'scenario':<40} {'recipients':>10} {'sent':>6} {'received':>9} {'lost':>5} {'duplicates':>10} "
        f"{'s':>6} {'s after fault':>13}"
    )
    write(header)
    write("-" * len(header))
    for row in REPORT:
        after = "-" if row.after_fault_s is None else f"{row.after_fault_s}"
        write(
            f"{row.scenario:<40} {row.recipients:>10} {row.sent:>6} {row.received:>9} {row.lost:>5} "
            f"{row.duplicates:>10} {row.seconds:>6} {after:>13}"
        )
