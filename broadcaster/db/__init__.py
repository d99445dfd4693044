"""Tables (SQLAlchemy Core) and the engines (``engines``). SQLite by default, PostgreSQL in production.

Ids the public sees (components, incidents, updates, subscribers) are short random strings
like Statuspage's; the ledger uses integer ids because it is the big, append-mostly table. The shared
types and ``metadata`` live in ``_base``; the alert and listening tables in ``alerting`` (re-exported here).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

from broadcaster.db._base import BigId as BigId
from broadcaster.db._base import Id as Id
from broadcaster.db._base import UTCDateTime as UTCDateTime
from broadcaster.db._base import metadata as metadata
from broadcaster.db._base import new_id as new_id
from broadcaster.db._base import utcnow as utcnow
from broadcaster.db.alerting import alert_groups as alert_groups
from broadcaster.db.alerting import alert_rules as alert_rules
from broadcaster.db.alerting import drafts as drafts
from broadcaster.db.alerting import incident_replies as incident_replies
from broadcaster.db.alerting import listening_polls as listening_polls
from broadcaster.db.engines import connect_sqlite as connect_sqlite
from broadcaster.db.engines import make_engine as make_engine
from broadcaster.db.engines import sqlite_file as sqlite_file

components = Table(
    "components",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", Text),
    Column("group_id", Id, ForeignKey("components.id", ondelete="SET NULL")),
    Column("is_group", Boolean, nullable=False, default=False),
    Column("position", Integer, nullable=False, default=0),
    Column("status", String(32), nullable=False, default="operational"),
    Column("showcase", Boolean, nullable=False, default=True),
    Column("only_show_if_degraded", Boolean, nullable=False, default=False),
    Column("start_date", String(10)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(16), nullable=False, default="incident"),
    Column("name", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("impact", String(16), nullable=False),
    Column("impact_override", Boolean, nullable=False, default=False),
    Column("drill", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("monitoring_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("scheduled_for", UTCDateTime),
    Column("scheduled_until", UTCDateTime),
    Column("next_update_at", UTCDateTime),
    Column("reminded_at", UTCDateTime),
    Column("template_id", Id),
    Column("meta", JSON, nullable=False, default=dict),
    # a maintenance that runs itself (broadcaster/domain/maintenance.py, the worker's maintenance cron)
    Column("auto_transition", Boolean, nullable=False, default=True, server_default=true()),
    Column("auto_start_message", Text),  # None: the templated "in progress" text
    Column("auto_complete_message", Text),
    Column("remind_before_minutes", Float),  # None: the maintenance_remind_before_minutes setting; 0: none
    Column("remind_at", UTCDateTime),  # when the subscribers' reminder is due; None once sent or not wanted
    Column("rrule", String(500)),  # RFC 5545 RRULE: the next occurrence is scheduled when this one completes
    Column("recurrence_start", UTCDateTime),  # the rule's DTSTART
    Column("recurred_at", UTCDateTime),  # the next occurrence was scheduled (or the rule had none left)
    Column("sequence", Integer, nullable=False, default=0, server_default="0"),  # iCalendar SEQUENCE: edits
    Index("ix_incidents_status_created", "status", "created_at"),
    Index("ix_incidents_rrule_recurred", "rrule", "recurred_at"),
)

# A maintenance's components: the status each takes during the window, and the one it had before.
maintenance_components = Table(
    "maintenance_components",
    metadata,
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("component_id", Id, ForeignKey("components.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("status_before", String(32)),  # recorded at the start; restored at the end unless changed meanwhile
)

incident_components = Table(
    "incident_components",
    metadata,
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("component_id", Id, ForeignKey("components.id", ondelete="CASCADE"), primary_key=True),
)

updates = Table(
    "updates",
    metadata,
    Column("id", Id, primary_key=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("display_at", UTCDateTime, nullable=False),
    Column("deliver_notifications", Boolean, nullable=False, default=True),
    Column("channels", JSON, nullable=False, default=list),
    Column("next_update_at", UTCDateTime),
    Column("agent", JSON, nullable=False, default=dict),
    Column("author", String(255)),
    Column("public", Boolean, nullable=False, default=True, server_default=true()),  # status_page among channels
    # {"fr": {"title": "...", "message": "..."}}: the update in other languages (broadcaster.i18n)
    Column("translations", JSON, nullable=False, default=dict, server_default="{}"),
    UniqueConstraint("incident_id", "number"),
)

# Component status history: one row per change, tied to an update when one caused it.
status_changes = Table(
    "status_changes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("component_id", Id, ForeignKey("components.id", ondelete="CASCADE"), nullable=False),
    Column("update_id", Id, ForeignKey("updates.id", ondelete="CASCADE")),
    Column("old_status", String(32)),
    Column("new_status", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_status_changes_component_created", "component_id", "created_at"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("address", String(512), nullable=False),
    Column("confirmed", Boolean, nullable=False, default=False),
    Column("confirmed_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("unsubscribed_at", UTCDateTime),
    Column("suppressed_reason", Text),  # hard bounce / carrier opt-out: never mailed again
    Column("secret", String(128)),  # webhook signing secret
    Column("drill", Boolean, nullable=False, default=False),  # drill audience, never real updates
    Column("meta", JSON, nullable=False, default=dict),
    Column("language", String(16)),  # null: the page's default language
    UniqueConstraint("channel", "address", "drill"),
    Index("ix_subscribers_channel_active", "channel", "confirmed", "id"),
)

subscriber_components = Table(
    "subscriber_components",
    metadata,
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("component_id", Id, ForeignKey("components.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_subscriber_components_component", "component_id"),
)

# Short codes (SMS confirmation) with expiry and attempt count.
verification_codes = Table(
    "verification_codes",
    metadata,
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("code_hash", String(128), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("update_id", Id, ForeignKey("updates.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("enqueued_at", UTCDateTime),
    Column("done_at", UTCDateTime),
    UniqueConstraint("update_id", "channel"),
    Index("ix_outbox_done", "done_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # null for a one-off message (broadcaster.delivery.direct), which belongs to no update
    Column("update_id", Id, ForeignKey("updates.id", ondelete="CASCADE")),
    Column("kind", String(16), nullable=False, default="update", server_default="update"),  # models.DeliveryKind
    Column("channel", String(32), nullable=False),
    # subscriber id, "*" for a broadcast; a one-off's "contact:<id>" or "user:<name>" (or its subscriber id)
    Column("recipient", String(64), nullable=False),
    Column("address", String(512)),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("provider_id", String(255)),
    Column("provider_status", String(32)),
    Column("last_error", Text),
    Column("claim", String(32)),
    Column("claimed_at", UTCDateTime),
    Column("next_attempt_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("update_id", "channel", "recipient"),
    Index("ix_deliveries_state", "state", "next_attempt_at"),
    Index("ix_deliveries_update_channel_id", "update_id", "channel", "id"),
    Index("ix_deliveries_provider_id", "provider_id"),
)

# What a channel keeps per incident between updates (social thread ids, article ids).
channel_threads = Table(
    "channel_threads",
    metadata,
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("data", JSON, nullable=False, default=dict),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False, default="admin"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),  # coarse: written at most once a minute
    Column("revoked_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("email", String(255)),
    Column("phone", String(32)),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    # in the session cookie; bumped by logout, role or password change and disabling, ending every session
    Column("session_epoch", Integer, nullable=False, default=0, server_default="0"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(255)),
    Column("details", JSON, nullable=False, default=dict),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("actor", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response", JSON),
    Column("created_at", UTCDateTime, nullable=False),
)

incident_templates = Table(
    "incident_templates",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("crisis_type", String(64)),
    Column("title", String(255), nullable=False),
    Column("status", String(32), nullable=False, default="investigating"),
    Column("impact", String(16)),
    Column("message", Text, nullable=False),
    Column("agent", JSON, nullable=False, default=dict),
    Column("channels", JSON),
    Column("next_update_in_minutes", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# Crisis playbooks (broadcaster/crisis/playbooks.py): a crisis type with severity levels, each level an
# incident template, default channels, a promised cadence and an internal contact list.
playbooks = Table(
    "playbooks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("crisis_type", String(64), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

playbook_levels = Table(
    "playbook_levels",
    metadata,
    Column("playbook_id", Id, ForeignKey("playbooks.id", ondelete="CASCADE"), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("title", String(255), nullable=False),
    Column("status", String(32), nullable=False, default="investigating"),
    Column("impact", String(16)),
    Column("message", Text, nullable=False),
    Column("agent", JSON, nullable=False, default=dict),  # talking points, approved answers, escalation
    Column("channels", JSON, nullable=False, default=list),
    Column("cadence_minutes", Integer),
)

# Internal people kept informed during a crisis. Never subscribers: no public list, no export.
contacts = Table(
    "contacts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("role", String(255), nullable=False, default=""),
    Column("email", String(255)),
    Column("phone", String(32)),
    Column("groups", JSON, nullable=False, default=list),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

contact_assignments = Table(
    "contact_assignments",
    metadata,
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("playbook_id", Id, ForeignKey("playbooks.id", ondelete="CASCADE"), primary_key=True),
    Column("level", Integer, primary_key=True),
)

incident_contacts = Table(
    "incident_contacts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("level", Integer, nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    Column("notified_at", UTCDateTime),  # first notification sent
    Column("notified_number", Integer, nullable=False, default=0),  # last update number sent to them
    Column("acknowledged_at", UTCDateTime),
    Column("ack_token_hash", String(128)),  # SHA-256 of the link that acknowledged
    UniqueConstraint("incident_id", "contact_id"),
)


channel_credentials = Table(
    "channel_credentials",
    metadata,
    # one provider account's rotating credential, e.g. "x:oauth2" or "bluesky:status.example.org"
    Column("name", String(255), primary_key=True),
    Column("ciphertext", Text, nullable=False),  # encrypted with the secret key; never stored in clear
    Column("version", Integer, nullable=False, default=0),  # bumped on each rotation (compare-and-swap)
    Column("expires_at", UTCDateTime),  # when the access part expires, if the provider says
    Column("updated_at", UTCDateTime, nullable=False),
)

channel_checks = Table(
    "channel_checks",
    metadata,
    # the last pre-flight check of each configured channel
    Column("channel", String(64), primary_key=True),
    Column("ok", Boolean, nullable=False),
    Column("reason", Text),  # the provider's reason when not ok
    Column("detail", Text),  # what was verified when ok (the account, the section)
    Column("checked_at", UTCDateTime, nullable=False),
    Column("failing_since", UTCDateTime),  # first failed check of the current failure
    Column("notified_at", UTCDateTime),  # commanders told of the current failure (once per failure)
)

# The page's brand (one row, id "page"): what overrides BROADCASTER_PAGE_NAME and styles every public surface.
page_brand = Table(
    "page_brand",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(255)),
    Column("description", Text),
    Column("accent_color", String(7)),  # "#rrggbb", checked for contrast when set
    Column("links", JSON, nullable=False, default=list),  # [{label, url}]
    Column("custom_css", Text, nullable=False, default=""),
    Column("logo", LargeBinary),  # PNG, or SVG as sanitized
    Column("logo_type", String(32)),
    Column("favicon", LargeBinary),
    Column("favicon_type", String(32)),
    Column("updated_at", UTCDateTime, nullable=False),
)

# "How to reach us now": each contact channel and its state (models.ContactState), in page order.
contact_channels = Table(
    "contact_channels",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("note", String(255), nullable=False, default=""),
    Column("url", String(2048)),
    Column("updated_at", UTCDateTime, nullable=False),
)


# What an import brought in (broadcaster.importing): each object keeps its id at the source, so a
# second run updates or leaves it instead of adding it again.
import_sources = Table(
    "import_sources",
    metadata,
    Column("source", String(255), primary_key=True),  # "statuspage:PAGE_ID", "cachet:https://host"
    Column("kind", String(32), primary_key=True),  # component, incident, update, subscriber, page
    Column("source_id", String(255), primary_key=True),
    Column("local_id", Id, nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of what the source said last time
    Column("imported_at", UTCDateTime, nullable=False),
    Index("ix_import_sources_kind_local", "kind", "local_id"),
)


# The mirror (status_page.mirror): per target, each object's content hash when it was last pushed
# (the next push sends only what differs), and how the target's pushes went.
mirror_objects = Table(
    "mirror_objects",
    metadata,
    Column("target", String(255), primary_key=True),  # "s3://bucket/prefix", "dir:/srv/mirror"
    Column("key", String(1024), primary_key=True),  # "index.html", "api/v2/summary.json"
    Column("digest", String(64), nullable=False),  # SHA-256 of the body, the banner's time left out
    Column("pushed_at", UTCDateTime, nullable=False),
)

mirror_targets = Table(
    "mirror_targets",
    metadata,
    Column("target", String(255), primary_key=True),
    Column("last_attempt_at", UTCDateTime, nullable=False),
    Column("last_success_at", UTCDateTime),
    Column("failing_since", UTCDateTime),  # the first failed push since the last success
    Column("last_error", Text),
    Column("objects", Integer, nullable=False, default=0),  # on the target after the last success
    Column("uploaded", Integer, nullable=False, default=0),  # sent by the last successful push
)
