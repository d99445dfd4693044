"""crisis playbooks: playbooks, levels, contacts, assignments, incident contacts

Revision ID: 0002_playbooks
Revises: 0001
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import broadcaster.db

revision: str = "0002_playbooks"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = broadcaster.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "playbooks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("crisis_type", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playbooks")),
        sa.UniqueConstraint("name", name=op.f("uq_playbooks_name")),
    )
    op.create_table(
        "playbook_levels",
        sa.Column("playbook_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("impact", sa.String(length=16), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("agent", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("cadence_minutes", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["playbook_id"], ["playbooks.id"], name=op.f("fk_playbook_levels_playbook_id_playbooks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("playbook_id", "level", name=op.f("pk_playbook_levels")),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("name", name=op.f("uq_contacts_name")),
    )
    op.create_table(
        "contact_assignments",
        sa.Column("contact_id", sa.String(length=32), nullable=False),
        sa.Column("playbook_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_contact_assignments_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["playbook_id"],
            ["playbooks.id"],
            name=op.f("fk_contact_assignments_playbook_id_playbooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "playbook_id", "level", name=op.f("pk_contact_assignments")),
    )
    op.create_table(
        "incident_contacts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("added_at", UTC, nullable=False),
        sa.Column("notified_at", UTC, nullable=True),
        sa.Column("notified_number", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", UTC, nullable=True),
        sa.Column("ack_token_hash", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_incident_contacts_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_contacts_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_contacts")),
        sa.UniqueConstraint("incident_id", "contact_id", name=op.f("uq_incident_contacts_incident_id_contact_id")),
    )


def downgrade() -> None:
    op.drop_table("incident_contacts")
    op.drop_table("contact_assignments")
    op.drop_table("contacts")
    op.drop_table("playbook_levels")
    op.drop_table("playbooks")
