"""Page branding and contact channels: the page's brand (logo, favicon, accent, links, custom CSS) and how to reach us now

Revision ID: 0008_page_branding
Revises: 0007_channel_accounts
Create Date: 2026-12-01 23:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008_page_branding"
down_revision: str | Sequence[str] | None = "0007_channel_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # filled in with the feature's tables and columns


def downgrade() -> None:
    pass
