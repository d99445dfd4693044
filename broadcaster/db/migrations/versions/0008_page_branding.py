"""Page branding and contact channels: the page's brand (logo, favicon, accent, links, custom CSS) and how to reach us now

Revision ID: 0008_page_branding
Revises: 0007_channel_accounts
Create Date: 2026-12-01 23:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broadcaster.db import UTCDateTime

revision: str = "0008_page_branding"
down_revision: str | Sequence[str] | None = "0007_channel_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "page_brand",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("description", sa.Text()),
        sa.Column("accent_color", sa.String(7)),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("custom_css", sa.Text(), nullable=False),
        sa.Column("logo", sa.LargeBinary()),
        sa.Column("logo_type", sa.String(32)),
        sa.Column("favicon", sa.LargeBinary()),
        sa.Column("favicon_type", sa.String(32)),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_brand")),
    )
    op.create_table(
        "contact_channels",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("note", sa.String(255), nullable=False),
        sa.Column("url", sa.String(2048)),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_contact_channels")),
    )


def downgrade() -> None:
    op.drop_table("contact_channels")
    op.drop_table("page_brand")
