"""Settings, declared once, read from ``BROADCASTER_*`` environment variables (and ``.env``).

Secrets are ``SecretStr`` so no repr or log line ever shows them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent  # a source checkout; inside a wheel this is site-packages


class Settings(BaseSettings):
    """Every setting broadcaster reads. A channel is enabled when its settings are present."""

    # env_ignore_empty: ``BROADCASTER_X=`` (as compose's ``${X:-}`` writes it) means "not set".
    model_config = SettingsConfigDict(env_prefix="BROADCASTER_", env_file=".env", extra="ignore",
                                      env_ignore_empty=True)

    # core
    database_url: str = "sqlite+aiosqlite:///./broadcaster.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "broadcaster:queue"
    public_url: str = "http://127.0.0.1:8000"
    page_name: str = "Service Status"
    page_id: str = "broadcaster"
    time_zone: str = "Etc/UTC"
    secret_key: SecretStr = SecretStr("dev-secret-change-me")
    templates_dir: Path = PACKAGE_DIR / "templates"  # shipped in the wheel
    log_format: str = "text"
    max_body_bytes: int = 64 * 1024

    # fan-out
    batch_size: int = 1000  # bench/README.md: 1000 with 8 jobs beat 500 with 16 for email
    max_jobs: int = 8  # = smtp_max_connections: a job never holds claimed rows while waiting for a session
    job_timeout_s: float = 120.0
    max_attempts: int = 8
    retry_base_s: float = 2.0
    retry_max_s: float = 600.0
    relay_interval_s: int = 5
    sending_lease_s: float = 130.0  # must outlast job_timeout_s, or a slow batch could be resent
    reminder_interval_s: int = 30  # how often the cadence-reminder cron looks for late updates
    circuit_failure_threshold: int = 5  # failed batches in a row that pause a channel (0: off)
    circuit_cooldown_s: float = 30.0  # how long a paused channel waits before a probe batch

    # static mirror
    static_export_dir: Path | None = None

    # email (SMTP)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 30.0
    smtp_max_connections: int = 8
    email_from: str | None = None

    # SMS (Twilio-compatible)
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    sms_max_segments: int = 2
    sms_rate_per_s: float = 50.0
    sms_concurrency: int = 16

    # social
    mastodon_base_url: str | None = None
    mastodon_access_token: SecretStr | None = None
    mastodon_visibility: str = "public"
    bluesky_base_url: str = "https://bsky.social"
    bluesky_handle: str | None = None
    bluesky_app_password: SecretStr | None = None
    x_base_url: str = "https://api.x.com"
    x_access_token: SecretStr | None = None

    # knowledge base
    zendesk_base_url: str | None = None
    zendesk_email: str | None = None
    zendesk_api_token: SecretStr | None = None
    zendesk_section_id: str | None = None
    zendesk_locale: str = "en-us"
    zendesk_permission_group_id: int | None = None
    zendesk_user_segment_id: int | None = None  # set an agents-only segment: articles hold agent notes
    freshdesk_base_url: str | None = None
    freshdesk_api_key: SecretStr | None = None
    freshdesk_folder_id: str | None = None

    # public sign-up (/subscribe): opt-in lifetimes and abuse limits (fixed windows in Redis)
    confirm_link_max_age_s: int = 48 * 3600
    sms_code_ttl_s: int = 600
    sms_code_max_attempts: int = 5
    subscribe_window_s: int = 3600
    subscribe_email_per_ip: int = 20
    subscribe_sms_per_ip: int = 5
    subscribe_sms_per_number: int = 3
    subscribe_sms_per_prefix: int = 30
    subscribe_sms_prefix_digits: int = 7  # leading E.164 digits (country code included) of a prefix

    # console login: attempts per fixed window in Redis, per client IP and per username
    login_window_s: int = 900
    login_per_ip: int = 30
    login_per_username: int = 10

    # outgoing webhooks
    webhook_allow_private: bool = False
    webhook_timeout_s: float = 10.0

    # HTTP timeouts for providers
    http_timeout_s: float = 15.0

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _lease_outlasts_jobs(self) -> Settings:
        if self.sending_lease_s < self.job_timeout_s:
            raise ValueError(
                f"sending_lease_s ({self.sending_lease_s}) must be at least job_timeout_s ({self.job_timeout_s}): "
                "a claim released while its job still runs would be sent twice"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
