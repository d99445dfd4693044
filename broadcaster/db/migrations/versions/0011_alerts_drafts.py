"""Alerts become drafts: inbound alert rules, draft incidents, and the replies people post to our updates

Revision ID: 0011_alerts_drafts
Revises: 0010_import_sources
Create Date: 2026-12-01 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0011_alerts_drafts"
down_revision: str | Sequence[str] | None = "0010_import_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # filled in with the feature's tables and columns


def downgrade() -> None:
    pass
