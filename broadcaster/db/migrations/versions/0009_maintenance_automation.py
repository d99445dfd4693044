"""Maintenance that runs itself: automatic transitions, reminders, recurrence and calendar sequence

Revision ID: 0009_maintenance_automation
Revises: 0008_page_branding
Create Date: 2026-12-01 23:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009_maintenance_automation"
down_revision: str | Sequence[str] | None = "0008_page_branding"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # filled in with the feature's tables and columns


def downgrade() -> None:
    pass
