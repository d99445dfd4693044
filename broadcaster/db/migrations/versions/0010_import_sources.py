"""Imports remember their source: each imported component, incident, update and subscriber keeps the id it had where it came from

Revision ID: 0010_import_sources
Revises: 0009_maintenance_automation
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010_import_sources"
down_revision: str | Sequence[str] | None = "0009_maintenance_automation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # filled in with the feature's tables and columns


def downgrade() -> None:
    pass
