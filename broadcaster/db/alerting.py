"""Tables of alerts turned into drafts (``broadcaster.alerts``) and of what people answer to our posts
(``broadcaster.jobs.listening``). ``broadcaster.db`` re-exports them with the others."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from broadcaster.db._base import BigId, Id, UTCDateTime, metadata

# Which alerts become which draft: every ``match`` pair must hold; the first rule of a source that matches wins.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("source", String(32), nullable=False),  # models.AlertSource
    Column("match", JSON, nullable=False, default=dict),  # {field: value}
    Column("components", JSON, nullable=False, default=dict),  # {component_id: status}
    Column("template_id", Id, ForeignKey("incident_templates.id", ondelete="SET NULL")),
    Column("title", String(255)),  # overrides the template's
    Column("message", Text),
    Column("playbook_id", Id, ForeignKey("playbooks.id", ondelete="SET NULL")),  # with level: its contact list
    Column("level", Integer),
    Column("auto_publish_after_s", Integer),  # None: a human decides
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_alert_at", UTCDateTime),  # also the lock an intake takes first (one intake per rule at a time)
    Index("ix_alert_rules_source", "source"),
)

# One problem as the alerts tell it, from its first alert to its resolve: the drafts it proposed, the incident.
alert_groups = Table(
    "alert_groups",
    metadata,
    Column("id", Id, primary_key=True),
    Column("rule_id", Id, ForeignKey("alert_rules.id", ondelete="SET NULL")),
    Column("source", String(32), nullable=False),
    Column("alerts", JSON, nullable=False, default=dict),  # {fingerprint: {"firing", "summary", "at"}}
    Column("first_alert_at", UTCDateTime, nullable=False),
    Column("last_alert_at", UTCDateTime, nullable=False),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="SET NULL")),  # once the opening is published
    Column("closed_at", UTCDateTime),  # resolved, discarded, or its incident closed
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_alert_groups_rule_closed", "rule_id", "closed_at"),
    Index("ix_alert_groups_incident", "incident_id"),
)

# An update proposed by alerts, public only once published (by a commander, or by the auto-publish cron).
drafts = Table(
    "drafts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("group_id", Id, ForeignKey("alert_groups.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # models.DraftKind
    Column("state", String(16), nullable=False),  # models.DraftState
    Column("body", JSON, nullable=False),  # the post: an IncidentIn (opening) or an UpdateIn (resolve) body
    Column("publish_at", UTCDateTime),  # auto-publish due; None: a human decides
    Column("update_id", Id, ForeignKey("updates.id", ondelete="SET NULL")),
    Column("decided_at", UTCDateTime),  # published or discarded
    Column("decided_by", String(255)),  # the actor, as the audit log names it
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_drafts_state_publish_at", "state", "publish_at"),
    Index("ix_drafts_group", "group_id"),
)

# Replies and mentions to an incident's social posts, as the listening cron fetched them.
incident_replies = Table(
    "incident_replies",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("provider_id", String(512), nullable=False),  # a status id, an at:// URI
    Column("kind", String(16), nullable=False),  # delivery.channel.ReplyKind
    Column("author", String(255), nullable=False),
    Column("text", Text, nullable=False),
    Column("url", String(2048)),
    Column("posted_at", UTCDateTime, nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
    UniqueConstraint("channel", "provider_id"),
    Index("ix_incident_replies_incident_posted", "incident_id", "posted_at"),
)

# When each listening channel is next asked for replies (rate limits push it back), and how the last pass went.
listening_polls = Table(
    "listening_polls",
    metadata,
    Column("channel", String(32), primary_key=True),
    Column("next_poll_at", UTCDateTime, nullable=False),
    Column("polled_at", UTCDateTime),
    Column("error", Text),  # the provider's reason when the last pass failed
)
