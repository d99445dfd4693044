"""one-off messages in the ledger: deliveries.kind, and update_id null for a message of no update

Revision ID: 0005_direct_deliveries
Revises: 0004_token_expiry
Create Date: 2026-12-02 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_direct_deliveries"
down_revision: str | Sequence[str] | None = "0004_token_expiry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Confirmations, contact notices and reminders (broadcaster.delivery.direct) belong to no update.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="update"))
        batch.alter_column("update_id", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE update_id IS NULL")
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("update_id", existing_type=sa.String(length=32), nullable=False)
        batch.drop_column("kind")
