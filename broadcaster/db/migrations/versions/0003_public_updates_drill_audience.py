"""public flag on updates; the drill audience kept apart from real subscribers

Revision ID: 0003_public_drill
Revises: 0002_playbooks
Create Date: 2026-12-01 20:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_public_drill"
down_revision: str | Sequence[str] | None = "0002_playbooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An update whose channels leave out the status page is on no public surface.
    with op.batch_alter_table("updates") as batch:
        batch.add_column(sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.true()))
    conn = op.get_bind()
    updates = sa.table(
        "updates", sa.column("id", sa.String), sa.column("channels", sa.JSON), sa.column("public", sa.Boolean)
    )
    private = [
        row.id
        for row in conn.execute(sa.select(updates.c.id, updates.c.channels))
        if "status_page" not in (row.channels or [])
    ]
    for start in range(0, len(private), 500):
        conn.execute(updates.update().where(updates.c.id.in_(private[start : start + 500])).values(public=False))
    # A drill recipient and a real subscriber of the same address are two rows.
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint("uq_subscribers_channel_address", type_="unique")
        batch.create_unique_constraint("uq_subscribers_channel_address_drill", ["channel", "address", "drill"])


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint("uq_subscribers_channel_address_drill", type_="unique")
        batch.create_unique_constraint("uq_subscribers_channel_address", ["channel", "address"])
    with op.batch_alter_table("updates") as batch:
        batch.drop_column("public")
