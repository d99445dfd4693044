"""Alert payloads as each sender sends them (shapes from their documentation), for the alert tests."""

from __future__ import annotations

from typing import Any


def alertmanager(
    status: str = "firing", fingerprint: str = "6b1f2c0e5a7d9e31", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """Alertmanager's webhook_config payload, version 4, with one alert."""
    alert_labels = labels or {"alertname": "ApiErrors", "service": "api", "severity": "critical"}
    return {
        "version": "4",
        "groupKey": '{}/{service="api"}:{alertname="ApiErrors"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "broadcaster",
        "groupLabels": {"alertname": alert_labels["alertname"]},
        "commonLabels": alert_labels,
        "commonAnnotations": {"summary": "API answers 5xx to 12% of requests"},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": status,
                "labels": alert_labels,
                "annotations": {"summary": "API answers 5xx to 12% of requests", "runbook": "https://wiki/api"},
                "startsAt": "2026-12-02T10:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-02T10:20:00.000Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=rate",
                "fingerprint": fingerprint,
            }
        ],
    }


def grafana(status: str = "firing") -> dict[str, Any]:
    """Grafana alerting's webhook contact point payload."""
    body = alertmanager(status, labels={"alertname": "Checkout latency", "grafana_folder": "Shop", "team": "web"})
    body.update(version="1", orgId=1, state="alerting", title="[FIRING:1] Checkout latency", message="…")
    body["alerts"][0].update(
        dashboardURL="https://grafana.example/d/abc", panelURL="https://grafana.example/d/abc?viewPanel=2"
    )
    return body


def pagerduty(event_type: str = "incident.triggered") -> dict[str, Any]:
    """A PagerDuty v3 webhook event."""
    return {
        "event": {
            "id": "01DEN3MUB8VYC1EMXQSHWRHB6T",
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-12-02T10:00:00.000Z",
            "agent": None,
            "client": None,
            "data": {
                "id": "Q1BZMV1LMQ9KUH",
                "type": "incident",
                "self": "https://api.pagerduty.com/incidents/Q1BZMV1LMQ9KUH",
                "html_url": "https://acme.pagerduty.com/incidents/Q1BZMV1LMQ9KUH",
                "number": 4021,
                "status": "resolved" if event_type == "incident.resolved" else "triggered",
                "incident_key": "api-5xx",
                "created_at": "2026-12-02T10:00:00Z",
                "title": "Checkout API returns 503",
                "service": {"id": "PSERVICE", "summary": "Checkout API", "type": "service_reference"},
                "assignees": [],
                "escalation_policy": {
                    "id": "PEP",
                    "summary": "Platform on-call",
                    "type": "escalation_policy_reference",
                },
                "teams": [{"id": "PTEAM", "summary": "Platform", "type": "team_reference"}],
                "priority": {"id": "PPRI", "summary": "P1", "type": "priority_reference"},
                "urgency": "high",
                "conference_bridge": None,
                "resolve_reason": None,
            },
        }
    }


def opsgenie(action: str = "Create") -> dict[str, Any]:
    """Opsgenie's webhook integration call."""
    return {
        "action": action,
        "alert": {
            "alertId": "70413a06-38d6-4c85-92b8-5ebc900d42e2",
            "message": "Payments provider times out",
            "tags": ["payments", "critical"],
            "tinyId": "1791",
            "entity": "payments-gateway",
            "alias": "payments-timeout",
            "createdAt": 1764669600000,
            "username": "System",
            "description": "p99 above 10 s",
            "details": {"service": "payments", "region": "eu-west-1"},
            "priority": "P1",
            "source": "datadog",
        },
        "source": {"name": "datadog", "type": "API"},
        "integrationName": "Broadcaster",
        "integrationType": "Webhook",
    }


def uptime_kuma(status: int = 0) -> dict[str, Any]:
    """Uptime Kuma's webhook notification (application/json preset)."""
    return {
        "heartbeat": {
            "monitorID": 7,
            "status": status,
            "time": "2026-12-02 10:00:00.000",
            "msg": "connect ECONNREFUSED 10.0.0.5:443" if status == 0 else "200 - OK",
            "important": True,
            "duration": 60,
        },
        "monitor": {
            "id": 7,
            "name": "Website",
            "url": "https://www.example.com",
            "hostname": None,
            "type": "http",
            "tags": [{"id": 1, "monitor_id": 7, "tag_id": 3, "name": "service", "value": "web", "color": "#059669"}],
        },
        "msg": "[Website] [🔴 Down] connect ECONNREFUSED 10.0.0.5:443",
    }


def gatus(status: str = "TRIGGERED") -> dict[str, Any]:
    """Gatus's custom provider with the body docs/alerts.md gives."""
    return {
        "endpoint_name": "login",
        "endpoint_group": "core",
        "endpoint_url": "https://login.example.com/health",
        "alert_description": "healthcheck failed 3 times",
        "status": status,
    }
