"""docker-compose.yml and the Dockerfile: the shape compose expects, and in step with Settings.

Docker is not available here, so the file is checked against the compose specification's
shape by hand, and against every setting (``setting_fields()``: the core's and each channel's)
so that a new setting cannot be added without deciding whether a deployment must set it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from broadcaster.delivery.registry import setting_fields

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("migrate", "web", "worker")
ENV_ANCHOR = "x-broadcaster-env"

# Settings a deployment decides (besides every setting without a default or defaulting to
# None, which are always required in compose): they must appear in docker-compose.yml.
DEPLOYMENT = {
    "database_url",
    "redis_url",
    "public_url",
    "page_name",
    "page_id",
    "time_zone",
    "default_language",
    "secret_key",
    "log_format",
    "log_level",
    "webhook_allow_private",
    "smtp_port",
    "smtp_starttls",
    "twilio_base_url",
    "mastodon_visibility",
    "bluesky_base_url",
    "x_base_url",
    "zendesk_locale",
    "slack_base_url",
    "mirror_s3_prefix",
}
# Tuning knobs whose defaults suit a deployment; documented in docs/configuration.md.
TUNING = {
    "queue_name",
    "languages",
    "channel_languages",
    "sandbox_url",
    "templates_dir",
    "max_body_bytes",
    "batch_size",
    "max_jobs",
    "job_timeout_s",
    "max_attempts",
    "retry_base_s",
    "retry_max_s",
    "relay_interval_s",
    "sending_lease_s",
    "reminder_interval_s",
    "channel_check_interval_minutes",
    "maintenance_interval_s",
    "maintenance_remind_before_minutes",
    "channel_check_timeout_s",
    "circuit_failure_threshold",
    "circuit_cooldown_s",
    "alerts_interval_s",
    "listening_interval_s",
    "listening_window_hours",
    "smtp_timeout_s",
    "smtp_max_connections",
    "sms_max_segments",
    "sms_rate_per_s",
    "sms_concurrency",
    "confirm_link_max_age_s",
    "sms_code_ttl_s",
    "sms_code_max_attempts",
    "subscribe_window_s",
    "subscribe_email_per_ip",
    "subscribe_sms_per_ip",
    "subscribe_sms_per_number",
    "subscribe_sms_per_prefix",
    "subscribe_sms_prefix_digits",
    "login_window_s",
    "login_per_ip",
    "login_per_username",
    "webhook_timeout_s",
    "http_timeout_s",
    "x_refresh_margin_s",
    "slack_post_interval_s",
    "sms_hourly_budget",
    "subscribe_confirmations_per_address",
    "subscribe_confirmations_window_s",
    "sse_max_streams",
    "sse_max_streams_per_client",
    "mirror_max_age_s",
}

# The compose specification's top-level and service keys (the subset a valid file may use).
TOP_LEVEL = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"}
SERVICE_KEYS = {
    "build",
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "depends_on",
    "healthcheck",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "restart",
    "deploy",
    "stop_grace_period",
    "stop_signal",
    "user",
    "working_dir",
    "labels",
    "networks",
    "logging",
    "ulimits",
    "init",
    "profiles",
    "pull_policy",
    "container_name",
    "hostname",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
DEPENDS_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def env_names(env: dict[str, Any]) -> set[str]:
    return {name for name in env if name.startswith("BROADCASTER_")}


def must_be_in_compose() -> set[str]:
    fields = setting_fields()
    implicit = {name for name, f in fields.items() if f.is_required() or f.default is None}
    return implicit | DEPLOYMENT


def test_every_setting_is_classified() -> None:
    unclassified = set(setting_fields()) - must_be_in_compose() - TUNING
    assert not unclassified, (
        f"new settings {sorted(unclassified)}: put them in docker-compose.yml's {ENV_ANCHOR} (and DEPLOYMENT "
        "here) if a deployment must choose them, else in TUNING; document them in docs/configuration.md"
    )
    assert not (DEPLOYMENT & TUNING)
    assert set(setting_fields()) >= (DEPLOYMENT | TUNING), "a listed setting no longer exists"


def test_compose_names_every_setting_the_app_needs(compose: dict[str, Any]) -> None:
    env = compose[ENV_ANCHOR]
    present = {name.removeprefix("BROADCASTER_").lower() for name in env_names(env)}
    missing = must_be_in_compose() - present
    assert not missing, f"docker-compose.yml lacks {sorted(f'BROADCASTER_{m.upper()}' for m in missing)}"
    unknown = present - set(setting_fields())
    assert not unknown, f"docker-compose.yml sets settings that do not exist: {sorted(unknown)}"


def test_each_setting_can_be_set_from_the_shell_or_env_file(compose: dict[str, Any]) -> None:
    for name, value in compose[ENV_ANCHOR].items():
        assert isinstance(value, str), f"{name}: compose environment values are strings"
        assert value.startswith("${" + name), f"{name} should read ${{{name}...}} so a .env file can set it"
    assert compose[ENV_ANCHOR]["BROADCASTER_SECRET_KEY"].startswith("${BROADCASTER_SECRET_KEY:?"), (
        "the secret key must have no default: compose refuses to start without it"
    )


def test_compose_shape(compose: dict[str, Any]) -> None:
    extensions = {k for k in compose if k.startswith("x-")}
    assert set(compose) - extensions <= TOP_LEVEL
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "mailpit"} <= set(services)
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, f"{name}: unknown keys {set(service) - SERVICE_KEYS}"
        assert "image" in service or "build" in service, name
        for key in ("command", "entrypoint"):
            if key in service:
                assert isinstance(service[key], list | str) and service[key], f"{name}.{key}"
        for port in service.get("ports", []):
            assert isinstance(port, str) and re.fullmatch(r"\d+:\d+", port), f"{name}: quote ports as 'H:C'"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith((".", "/")) or source in declared_volumes, f"{name}: undeclared {source}"
        depends = service.get("depends_on", {})
        for other, condition in depends.items():
            assert other in services, f"{name} depends on unknown {other}"
            assert condition["condition"] in DEPENDS_CONDITIONS
        assert service.get("restart", "no") in {"no", "always", "on-failure", "unless-stopped"}


def test_healthcheck_on_every_service(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert set(check) <= HEALTHCHECK_KEYS
        assert not check.get("disable")
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                assert DURATION.match(str(check[key])), f"{name}.healthcheck.{key}"
        assert isinstance(check.get("retries", 3), int)


def test_app_services_share_the_environment(compose: dict[str, Any]) -> None:
    env = compose[ENV_ANCHOR]
    for name in APP_SERVICES:
        service_env = compose["services"][name]["environment"]
        assert {k: service_env.get(k) for k in env} == env, f"{name} does not use the {ENV_ANCHOR} anchor"
    assert "&broadcaster-env" in COMPOSE.read_text()


def test_the_stack_is_wired_for_production(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "--appendonly" in services["redis"]["command"], "Redis must persist"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["broadcaster", "migrate"]
    assert services["worker"]["command"][:2] == ["broadcaster", "worker"]
    assert "ports" not in services["worker"] and "container_name" not in services["worker"], (
        "--scale worker=N needs workers without fixed ports or names"
    )
    web = services["web"]
    assert web["command"][:2] == ["broadcaster", "serve"] and "--workers" in web["command"]
    assert web["environment"]["PROMETHEUS_MULTIPROC_DIR"] in web["tmpfs"]
    assert compose[ENV_ANCHOR]["BROADCASTER_DATABASE_URL"].split(":-", 1)[1].startswith("postgresql+asyncpg://")
    assert compose[ENV_ANCHOR]["BROADCASTER_SMTP_HOST"].endswith(":-mailpit}")


def test_dockerfile_is_slim_and_not_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)
