"""The mirror remembers what it pushed: per target, each object's content hash and the last successful push

Revision ID: 0012_mirror_pushes
Revises: 0011_alerts_drafts
Create Date: 2026-12-02 00:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0012_mirror_pushes"
down_revision: str | Sequence[str] | None = "0011_alerts_drafts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # filled in with the feature's tables and columns (or left empty if none are needed)


def downgrade() -> None:
    pass
