"""Connected accounts: rotating provider credentials shared by every worker, and the last pre-flight check per channel

Revision ID: 0007_channel_accounts
Revises: 0006_session_epoch
Create Date: 2026-12-01 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broadcaster.db import UTCDateTime

revision: str = "0007_channel_accounts"
down_revision: str | Sequence[str] | None = "0006_session_epoch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_credentials",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True)),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "channel_checks",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("detail", sa.Text()),
        sa.Column("checked_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("failing_since", UTCDateTime(timezone=True)),
        sa.Column("notified_at", UTCDateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("channel_checks")
    op.drop_table("channel_credentials")
