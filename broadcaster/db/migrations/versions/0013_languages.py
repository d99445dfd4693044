"""Languages: a subscriber's language, and an update's translations

Revision ID: 0013_languages
Revises: 0012_mirror_pushes
Create Date: 2026-12-02 04:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_languages"
down_revision: str | Sequence[str] | None = "0012_mirror_pushes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("language", sa.String(16)))  # null: the page's default language
    with op.batch_alter_table("updates") as batch:
        batch.add_column(sa.Column("translations", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("updates") as batch:
        batch.drop_column("translations")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("language")
