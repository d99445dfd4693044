"""Imports remember their source: each imported component, incident, update and subscriber keeps the id it had where it came from

Revision ID: 0010_import_sources
Revises: 0009_maintenance_automation
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broadcaster.db import UTCDateTime

revision: str = "0010_import_sources"
down_revision: str | Sequence[str] | None = "0009_maintenance_automation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_sources",
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("local_id", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("imported_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "kind", "source_id", name=op.f("pk_import_sources")),
    )
    op.create_index(op.f("ix_import_sources_kind_local"), "import_sources", ["kind", "local_id"])


def downgrade() -> None:
    op.drop_index("ix_import_sources_kind_local", table_name="import_sources")
    op.drop_table("import_sources")
