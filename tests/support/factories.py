"""Ready-made domain objects for unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from broadcaster.delivery.channel import Recipient
from broadcaster.message import AgentNotes, ApprovedAnswer, ComponentChange, Message


def make_message(**overrides: Any) -> Message:
    """A realistic first update of an incident; override any field."""
    fields: dict[str, Any] = dict(
        update_id="upd000000001",
        incident_id="inc000000001",
        incident_title="Elevated API error rates",
        kind="incident",
        status="investigating",
        impact="major",
        body_markdown="We are investigating **elevated error rates** on the API. Next update in 30 minutes.",
        body_html="<p>We are investigating <strong>elevated error rates</strong> on the API. "
        "Next update in 30 minutes.</p>",
        body_text="We are investigating elevated error rates on the API. Next update in 30 minutes.",
        created_at=datetime(2026, 11, 23, 10, 5, tzinfo=UTC),
        update_number=1,
        public_url="https://status.example.com/incidents/inc000000001",
        page_name="Example Status",
        page_url="https://status.example.com",
        components=(
            ComponentChange(id="cmp000000001", name="API", new_status="partial_outage", old_status="operational"),
        ),
        agent=AgentNotes(
            talking_points="Apologise; the API is failing for some requests; no data is lost.",
            approved_answers=(ApprovedAnswer("When will it be fixed?", "We will update within 30 minutes."),),
            do_not_say="Do not guess a cause.",
            escalation="Enterprise customers: transfer to the on-call TAM.",
        ),
    )
    fields.update(overrides)
    return Message(**fields)


def email_recipients(*addresses: str) -> list[Recipient]:
    """Email recipients numbered from 1 (their delivery ids), each with its own signed links."""
    return [
        Recipient(
            delivery_id=n,
            subscriber_id=f"sub{n}",
            address=address,
            unsubscribe_url=f"https://status.example.com/unsubscribe?token=t{n}",
            manage_url=f"https://status.example.com/subscriptions?token=t{n}",
        )
        for n, address in enumerate(addresses, start=1)
    ]
