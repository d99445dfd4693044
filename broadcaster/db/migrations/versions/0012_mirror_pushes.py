"""The mirror remembers what it pushed: per target, each object's content hash and the last successful push

Revision ID: 0012_mirror_pushes
Revises: 0011_alerts_drafts
Create Date: 2026-12-02 00:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broadcaster.db import UTCDateTime

revision: str = "0012_mirror_pushes"
down_revision: str | Sequence[str] | None = "0011_alerts_drafts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mirror_objects",
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("pushed_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", "key", name=op.f("pk_mirror_objects")),
    )
    op.create_table(
        "mirror_targets",
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("last_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", UTCDateTime(timezone=True)),
        sa.Column("failing_since", UTCDateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("objects", sa.Integer(), nullable=False),
        sa.Column("uploaded", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_mirror_targets")),
    )


def downgrade() -> None:
    op.drop_table("mirror_targets")
    op.drop_table("mirror_objects")
