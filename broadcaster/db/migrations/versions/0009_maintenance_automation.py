"""Maintenance that runs itself: automatic transitions, reminders, recurrence and calendar sequence

Revision ID: 0009_maintenance_automation
Revises: 0008_page_branding
Create Date: 2026-12-01 23:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broadcaster.db import UTCDateTime

revision: str = "0009_maintenance_automation"
down_revision: str | Sequence[str] | None = "0008_page_branding"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_COLUMNS = (
    "auto_transition",
    "auto_start_message",
    "auto_complete_message",
    "remind_before_minutes",
    "remind_at",
    "rrule",
    "recurrence_start",
    "recurred_at",
    "sequence",
)


def upgrade() -> None:
    # Existing maintenances run themselves too: a window already over is completed by the next worker.
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("auto_transition", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("auto_start_message", sa.Text()))
        batch.add_column(sa.Column("auto_complete_message", sa.Text()))
        batch.add_column(sa.Column("remind_before_minutes", sa.Float()))
        batch.add_column(sa.Column("remind_at", UTCDateTime(timezone=True)))
        batch.add_column(sa.Column("rrule", sa.String(500)))
        batch.add_column(sa.Column("recurrence_start", UTCDateTime(timezone=True)))
        batch.add_column(sa.Column("recurred_at", UTCDateTime(timezone=True)))
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_incidents_rrule_recurred", ["rrule", "recurred_at"])
    op.create_table(
        "maintenance_components",
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("component_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_before", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_maintenance_components_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["components.id"],
            name=op.f("fk_maintenance_components_component_id_components"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "component_id", name=op.f("pk_maintenance_components")),
    )


def downgrade() -> None:
    op.drop_table("maintenance_components")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index("ix_incidents_rrule_recurred")
        for name in NEW_COLUMNS:
            batch.drop_column(name)
