"""Alerts become drafts: inbound alert rules, draft incidents, and the replies people post to our updates

Revision ID: 0011_alerts_drafts
Revises: 0010_import_sources
Create Date: 2026-12-01 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broadcaster.db import UTCDateTime

revision: str = "0011_alerts_drafts"
down_revision: str | Sequence[str] | None = "0010_import_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("match", sa.JSON(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("template_id", sa.String(32)),
        sa.Column("title", sa.String(255)),
        sa.Column("message", sa.Text()),
        sa.Column("playbook_id", sa.String(32)),
        sa.Column("level", sa.Integer()),
        sa.Column("auto_publish_after_s", sa.Integer()),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_alert_at", UTCDateTime(timezone=True)),
        _fk("alert_rules", "template_id", "incident_templates", "SET NULL"),
        _fk("alert_rules", "playbook_id", "playbooks", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_index(op.f("ix_alert_rules_source"), "alert_rules", ["source"])
    op.create_table(
        "alert_groups",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(32)),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("alerts", sa.JSON(), nullable=False),
        sa.Column("first_alert_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_alert_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("incident_id", sa.String(32)),
        sa.Column("closed_at", UTCDateTime(timezone=True)),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        _fk("alert_groups", "rule_id", "alert_rules", "SET NULL"),
        _fk("alert_groups", "incident_id", "incidents", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_groups")),
    )
    op.create_index(op.f("ix_alert_groups_rule_closed"), "alert_groups", ["rule_id", "closed_at"])
    op.create_index(op.f("ix_alert_groups_incident"), "alert_groups", ["incident_id"])
    op.create_table(
        "drafts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("publish_at", UTCDateTime(timezone=True)),
        sa.Column("update_id", sa.String(32)),
        sa.Column("decided_at", UTCDateTime(timezone=True)),
        sa.Column("decided_by", sa.String(255)),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        _fk("drafts", "group_id", "alert_groups", "CASCADE"),
        _fk("drafts", "update_id", "updates", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
    )
    op.create_index(op.f("ix_drafts_state_publish_at"), "drafts", ["state", "publish_at"])
    op.create_index(op.f("ix_drafts_group"), "drafts", ["group_id"])
    op.create_table(
        "incident_replies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("provider_id", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("url", sa.String(2048)),
        sa.Column("posted_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", UTCDateTime(timezone=True), nullable=False),
        _fk("incident_replies", "incident_id", "incidents", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_replies")),
        sa.UniqueConstraint("channel", "provider_id", name=op.f("uq_incident_replies_channel_provider_id")),
    )
    op.create_index(op.f("ix_incident_replies_incident_posted"), "incident_replies", ["incident_id", "posted_at"])
    op.create_table(
        "listening_polls",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("next_poll_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("polled_at", UTCDateTime(timezone=True)),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_listening_polls")),
    )


def downgrade() -> None:
    op.drop_table("listening_polls")
    op.drop_index("ix_incident_replies_incident_posted", table_name="incident_replies")
    op.drop_table("incident_replies")
    op.drop_index("ix_drafts_group", table_name="drafts")
    op.drop_index("ix_drafts_state_publish_at", table_name="drafts")
    op.drop_table("drafts")
    op.drop_index("ix_alert_groups_incident", table_name="alert_groups")
    op.drop_index("ix_alert_groups_rule_closed", table_name="alert_groups")
    op.drop_table("alert_groups")
    op.drop_index("ix_alert_rules_source", table_name="alert_rules")
    op.drop_table("alert_rules")
