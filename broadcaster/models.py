"""Domain vocabulary, the same words Statuspage uses so clients and habits carry over."""

from __future__ import annotations

from enum import StrEnum


class ComponentStatus(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNDER_MAINTENANCE = "under_maintenance"


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"


class MaintenanceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    COMPLETED = "completed"


class Impact(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"
    MAINTENANCE = "maintenance"


class IncidentKind(StrEnum):
    INCIDENT = "incident"
    MAINTENANCE = "maintenance"


class ChannelKind(StrEnum):
    """A broadcast channel publishes once per update; a subscriber channel once per recipient."""

    BROADCAST = "broadcast"
    SUBSCRIBER = "subscriber"


class LimitUnit(StrEnum):
    """How a channel counts the length of what it sends against its ``limit``."""

    CHARACTERS = "characters"  # code points (an article title)
    GRAPHEMES = "graphemes"  # user-perceived characters (Mastodon counts each URL as 23, Bluesky does not)
    WEIGHTED = "weighted-characters"  # twitter-text weights: most scripts 1, CJK and emoji 2, a URL 23 (X)
    SMS_SEGMENTS = "sms-segments"  # GSM-7 septets or UCS-2 code units, per concatenated segment


class DeliveryKind(StrEnum):
    """What a ledger row records: an update fanned out, or a one-off message to one person."""

    UPDATE = "update"
    CONFIRMATION = "confirmation"  # the opt-in mail or SMS code of a new subscriber
    CONTACT_NOTICE = "contact_notice"  # an incident contact's internal view of an update
    REMINDER = "reminder"  # "the promised update is overdue", to the incident team
    PREFLIGHT = "preflight"  # "a channel fails its pre-flight check", to the commanders
    ALERT = "alert"  # "an alert proposes a draft", to the playbook level's contacts or the commanders


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    RETRY = "retry"
    SENT = "sent"
    FAILED = "failed"


class Role(StrEnum):
    ADMIN = "admin"
    COMMANDER = "commander"
    AGENT = "agent"
    VIEWER = "viewer"


class ContactState(StrEnum):
    """How a contact channel (phone, chat, email, stores) answers customers right now."""

    OPEN = "open"
    BUSY = "busy"
    CLOSED = "closed"


class AlertSource(StrEnum):
    """Who may send alerts to ``POST /api/v1/alerts/{source}`` (``broadcaster.alerts.sources``)."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    UPTIME_KUMA = "uptime_kuma"
    GATUS = "gatus"


class DraftKind(StrEnum):
    OPEN = "open"  # a firing alert's new incident
    RESOLVE = "resolve"  # the resolved alert's closing update


class ReplyKind(StrEnum):
    """What the listening cron found under one of our social posts (``broadcaster.delivery.channel.Reply``)."""

    REPLY = "reply"  # an answer in the thread of one of our posts
    MENTION = "mention"  # a post naming our account in answer to one of ours


class DraftState(StrEnum):
    PENDING = "pending"
    PUBLISHED = "published"
    DISCARDED = "discarded"


ROLE_RANK = {Role.VIEWER: 0, Role.AGENT: 1, Role.COMMANDER: 2, Role.ADMIN: 3}

OPEN_INCIDENT_STATUSES = (IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING)
CLOSED_STATUSES = ("resolved", "postmortem", "completed")

# Worst first: used to order components and derive an incident's default impact.
COMPONENT_SEVERITY = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.UNDER_MAINTENANCE: 1,
    ComponentStatus.DEGRADED_PERFORMANCE: 2,
    ComponentStatus.PARTIAL_OUTAGE: 3,
    ComponentStatus.MAJOR_OUTAGE: 4,
}

IMPACT_OF_COMPONENT_STATUS = {
    ComponentStatus.MAJOR_OUTAGE: Impact.CRITICAL,
    ComponentStatus.PARTIAL_OUTAGE: Impact.MAJOR,
    ComponentStatus.DEGRADED_PERFORMANCE: Impact.MINOR,
}

IMPACT_RANK = {Impact.NONE: 0, Impact.MAINTENANCE: 0, Impact.MINOR: 1, Impact.MAJOR: 2, Impact.CRITICAL: 3}


def humanize(value: str) -> str:
    """``partial_outage`` -> ``Partial outage``."""
    return value.replace("_", " ").capitalize()
