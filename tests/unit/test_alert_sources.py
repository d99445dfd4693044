"""Each sender's payload read into alerts (broadcaster.alerts.sources), matching, and the senders' auth."""

from __future__ import annotations

import pytest

from broadcaster.alerts import auth, sources
from broadcaster.errors import InputError
from broadcaster.models import AlertSource
from tests.support import alert_payloads as payloads


def test_alertmanager_labels_and_annotations_are_fields() -> None:
    (alert,) = sources.parse(AlertSource.ALERTMANAGER, payloads.alertmanager())
    assert alert.firing and alert.fingerprint == "6b1f2c0e5a7d9e31"
    assert alert.fields["service"] == "api" and alert.fields["annotations.runbook"] == "https://wiki/api"
    assert alert.summary == "API answers 5xx to 12% of requests"
    (resolved,) = sources.parse(AlertSource.ALERTMANAGER, payloads.alertmanager("resolved"))
    assert not resolved.firing and resolved.fingerprint == alert.fingerprint


def test_alertmanager_without_fingerprint_uses_the_labels() -> None:
    body = payloads.alertmanager()
    del body["alerts"][0]["fingerprint"]
    first = sources.parse(AlertSource.ALERTMANAGER, body)[0].fingerprint
    body["alerts"][0]["labels"] = {**body["alerts"][0]["labels"], "severity": "warning"}
    assert first != sources.parse(AlertSource.ALERTMANAGER, body)[0].fingerprint


def test_grafana_shares_alertmanagers_shape() -> None:
    (alert,) = sources.parse(AlertSource.GRAFANA, payloads.grafana())
    assert alert.fields["grafana_folder"] == "Shop" and alert.firing


def test_pagerduty_open_and_resolved_and_other_events() -> None:
    (alert,) = sources.parse(AlertSource.PAGERDUTY, payloads.pagerduty())
    assert alert.firing and alert.fingerprint == "Q1BZMV1LMQ9KUH"
    assert alert.fields["service"] == "Checkout API" and alert.fields["priority"] == "P1"
    assert alert.fields["teams"] == ("Platform",)
    (resolved,) = sources.parse(AlertSource.PAGERDUTY, payloads.pagerduty("incident.resolved"))
    assert not resolved.firing
    assert sources.parse(AlertSource.PAGERDUTY, payloads.pagerduty("incident.annotated")) == []
    assert sources.parse(AlertSource.PAGERDUTY, {"event": {"event_type": "pagey.ping"}}) == []


def test_opsgenie_alias_is_the_fingerprint_and_details_are_fields() -> None:
    (alert,) = sources.parse(AlertSource.OPSGENIE, payloads.opsgenie())
    assert alert.firing and alert.fingerprint == "payments-timeout"
    assert alert.fields["service"] == "payments" and "critical" in alert.fields["tags"]
    assert not sources.parse(AlertSource.OPSGENIE, payloads.opsgenie("Close"))[0].firing
    assert sources.parse(AlertSource.OPSGENIE, payloads.opsgenie("AddNote")) == []


def test_uptime_kuma_down_up_and_test_notification() -> None:
    (down,) = sources.parse(AlertSource.UPTIME_KUMA, payloads.uptime_kuma(0))
    assert down.firing and down.fingerprint == "monitor:7" and down.fields["service"] == "web"
    assert down.fields["monitor"] == "Website" and down.fields["status"] == "down"
    assert not sources.parse(AlertSource.UPTIME_KUMA, payloads.uptime_kuma(1))[0].firing
    assert sources.parse(AlertSource.UPTIME_KUMA, payloads.uptime_kuma(2)) == []  # pending
    assert sources.parse(AlertSource.UPTIME_KUMA, {"heartbeat": None, "monitor": None, "msg": "Testing"}) == []


def test_gatus_triggered_and_resolved() -> None:
    (alert,) = sources.parse(AlertSource.GATUS, payloads.gatus())
    assert alert.firing and alert.fingerprint == "core/login" and alert.fields["group"] == "core"
    assert not sources.parse(AlertSource.GATUS, payloads.gatus("RESOLVED"))[0].firing


@pytest.mark.parametrize(
    ("source", "body", "field"),
    [
        (AlertSource.ALERTMANAGER, {"version": "4"}, "alerts"),
        (AlertSource.ALERTMANAGER, {"alerts": [{"status": "firing", "labels": "x"}]}, "alerts.0.labels"),
        (AlertSource.ALERTMANAGER, {"alerts": [{"status": "burning", "labels": {}}]}, "alerts.0.status"),
        (AlertSource.PAGERDUTY, {"event": {"event_type": "incident.triggered"}}, "event.data"),
        (AlertSource.PAGERDUTY, {"event": {"event_type": "incident.triggered", "data": {}}}, "event.data.id"),
        (AlertSource.OPSGENIE, {"alert": {"alertId": "x"}}, "action"),
        (AlertSource.UPTIME_KUMA, {"heartbeat": {"status": "down"}, "monitor": {"id": 1}}, "heartbeat.status"),
        (AlertSource.GATUS, {"endpoint_name": "x", "status": "maybe"}, "status"),
    ],
)
def test_a_payload_not_of_the_senders_shape_names_the_field(source: AlertSource, body: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError) as caught:
        sources.parse(source, body)
    assert field in caught.value.fields


def test_matching_is_every_pair_case_insensitive_lists_and_wildcards() -> None:
    (alert,) = sources.parse(AlertSource.OPSGENIE, payloads.opsgenie())
    assert sources.matches(alert, {"service": "PAYMENTS", "priority": "p1"})
    assert sources.matches(alert, {"tags": "critical", "region": "*"})
    assert not sources.matches(alert, {"service": "payments", "priority": "P3"})
    assert not sources.matches(alert, {"missing": "*"})
    assert sources.matches(alert, {})


def test_pagerduty_signature_and_source_tokens() -> None:
    body = b'{"event": {}}'
    signature = auth.pagerduty_signature("whsec", body)
    assert signature.startswith("v1=") and auth.pagerduty_signed("whsec", body, signature)
    assert auth.pagerduty_signed("whsec", body, f"v1=00ff, {signature}"), "one of the rotation's signatures"
    assert not auth.pagerduty_signed("whsec", body + b" ", signature)
    assert not auth.pagerduty_signed("other", body, signature)
    assert not auth.pagerduty_signed("whsec", body, None)
    grafana = auth.source_token("key", AlertSource.GRAFANA)
    assert grafana != auth.source_token("key", AlertSource.GATUS) != auth.source_token("key2", AlertSource.GATUS)
    assert auth.source_token_ok("key", AlertSource.GRAFANA, grafana)
    assert not auth.source_token_ok("key", AlertSource.GATUS, grafana)
