"""Settings, read from ``BROADCASTER_*`` environment variables (and ``.env``).

``Settings`` declares the core's own settings. Every other ``BROADCASTER_*`` variable (or
keyword) is kept, unread, in ``Settings.model_extra``: each channel declares its own settings
as a ``ChannelSettings`` class and takes its part from there (``EmailSettings.from_core(settings)``),
so a plug-in channel declares its settings the way the built-in ones do::

    class SlackSettings(ChannelSettings):
        title: ClassVar[str] = "Slack"
        required: ClassVar[tuple[str, ...]] = ("slack_base_url", "slack_bot_token")
        slack_base_url: str | None = None  # BROADCASTER_SLACK_BASE_URL
        slack_bot_token: SecretStr | None = None  # BROADCASTER_SLACK_BOT_TOKEN

Secrets are ``SecretStr`` so no repr or log line ever shows them; the core does not know
which of the channels' values are secret, so it masks them all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Secret, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from broadcaster.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent  # a source checkout; inside a wheel this is site-packages
ENV_PREFIX = "BROADCASTER_"


class Settings(BaseSettings):
    """The core's settings; a channel's own settings wait in ``model_extra`` (see ``ChannelSettings``)."""

    # env_ignore_empty: ``BROADCASTER_X=`` (as compose's ``${X:-}`` writes it) means "not set".
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="allow", env_ignore_empty=True)

    # core
    database_url: str = "sqlite+aiosqlite:///./broadcaster.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "broadcaster:queue"
    public_url: str = "http://127.0.0.1:8000"
    page_name: str = "Service Status"
    page_id: str = "broadcaster"
    time_zone: str = "Etc/UTC"
    # the language of the page and of every message when the reader's is not offered (broadcaster.i18n)
    default_language: str = "en"
    # the languages offered to readers and subscribers (comma-separated); empty: every shipped catalog
    languages: Annotated[tuple[str, ...], NoDecode] = ()
    # what a broadcast channel posts in when not the default: "mastodon=fr,zendesk=de"
    channel_languages: Annotated[dict[str, str], NoDecode] = {}
    secret_key: SecretStr = SecretStr("dev-secret-change-me")
    templates_dir: Path = PACKAGE_DIR / "templates"  # shipped in the wheel
    log_format: str = "text"
    # DEBUG adds the periodic chatter (cron runs, per-job and per-batch lines)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # the local provider servers ``broadcaster up`` starts (``python -m sandbox``); loopback only
    sandbox_url: str = ""  # empty: no sandbox
    max_body_bytes: int = 64 * 1024
    # the proxies in front (comma-separated CIDRs): only from them are X-Forwarded-For/Forwarded believed
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...] | None, NoDecode] = None

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
    maintenance_interval_s: int = 1  # how often the maintenance cron starts, completes and reminds (1-59)
    maintenance_remind_before_minutes: float = 60.0  # subscribers' reminder before a window (0: none)
    channel_check_interval_minutes: int = 15  # how often the worker runs the channels' pre-flight check (0: never)
    channel_check_timeout_s: float = 30.0  # how long one channel's pre-flight check may take
    circuit_failure_threshold: int = 5  # failed batches in a row that pause a channel (0: off)
    circuit_cooldown_s: float = 30.0  # how long a paused channel waits before a probe batch

    # inbound alerts (broadcaster.alerts) and what people answer to our posts (broadcaster.jobs.listening)
    pagerduty_webhook_secret: SecretStr | None = None  # the PagerDuty v3 webhook subscription's signing secret
    alerts_interval_s: int = 1  # how often the worker publishes the drafts due to publish themselves (1-59)
    listening_interval_s: int = 120  # how often each social channel is asked for replies (rate limits push it back)
    listening_window_hours: float = 24.0  # how long after an incident closes its replies are still fetched

    # static mirror
    static_export_dir: Path | None = None

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
    subscribe_confirmations_per_address: int = 3  # opt-in mails or texts to one address per window (0: off)
    subscribe_confirmations_window_s: int = 24 * 3600
    # SMS sign-up: the countries (ISO codes, comma-separated; empty: all) and the sign-up texts an hour, in all
    sms_countries: Annotated[tuple[str, ...] | None, NoDecode] = None
    sms_hourly_budget: int = 200

    # console login (Redis): attempts per client in a fixed window; per (username, client) a growing delay
    login_window_s: int = 900
    login_per_ip: int = 30
    login_per_username: int = 10

    # live streams (/events, desk, console): open at once per web process, and per client (IPv6: per /64)
    sse_max_streams: int = 2000
    sse_max_streams_per_client: int = 20

    # subscriber webhook URLs: checked at sign-up and again by the webhook channel at delivery
    webhook_allow_private: bool = False

    # HTTP timeouts for providers
    http_timeout_s: float = 15.0

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(ip_network(item.strip(), strict=False) for item in value.split(",") if item.strip()) or None
        return value

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):  # JSON, as pydantic-settings writes a list
            value = json.loads(value)
        items = value.split(",") if isinstance(value, str) else list(value or ())
        return tuple(str(item).strip() for item in items if str(item).strip())

    @field_validator("channel_languages", mode="before")
    @classmethod
    def _split_channel_languages(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip().startswith("{"):  # JSON, as pydantic-settings writes a mapping
            return json.loads(value)
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        bad = [name for name, sep, code in pairs if not sep or not name.strip() or not code.strip()]
        if bad:
            raise ValueError(f"write channel=language pairs, e.g. mastodon=fr (not {', '.join(bad)})")
        return {name.strip(): code.strip() for name, _, code in pairs}

    @model_validator(mode="after")
    def _languages_shipped(self) -> Settings:
        from broadcaster import i18n

        shipped = i18n.shipped_languages()
        default = i18n.normalize(self.default_language)
        if default is None or i18n.best_match([default], shipped) != default:
            raise ValueError(
                f"default_language {self.default_language!r} has no catalog; shipped: {', '.join(shipped)}"
            )
        offered = [i18n.normalize(code) for code in self.languages]
        unknown = [code for code, norm in zip(self.languages, offered, strict=True) if norm not in shipped]
        if unknown:
            raise ValueError(f"languages without a catalog: {', '.join(unknown)}; shipped: {', '.join(shipped)}")
        chosen = tuple(code for code in offered if code) or shipped
        self.default_language = default
        self.languages = chosen if default in chosen else (default, *chosen)
        for channel, code in list(self.channel_languages.items()):
            if i18n.normalize(code) not in self.languages:
                raise ValueError(f"channel_languages: {channel}={code} is not an offered language")
            self.channel_languages[channel] = str(i18n.normalize(code))
        return self

    @field_validator("sms_countries", mode="before")
    @classmethod
    def _split_countries(cls, value: Any) -> Any:
        import phonenumbers

        items = value.split(",") if isinstance(value, str) else list(value or ())
        codes = [str(c).strip().upper() for c in items if str(c).strip()]
        unknown = [c for c in codes if c not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"not ISO country codes with phone numbers: {', '.join(unknown)} (e.g. GB, not UK)")
        return tuple(codes) or None

    @model_validator(mode="after")
    def _lease_outlasts_jobs(self) -> Settings:
        if self.sending_lease_s < self.job_timeout_s:
            raise ValueError(
                f"sending_lease_s ({self.sending_lease_s}) must be at least job_timeout_s ({self.job_timeout_s}): "
                "a claim released while its job still runs would be sent twice"
            )
        return self

    @model_validator(mode="after")
    def _mask_extras(self) -> Settings:
        extras = self.__pydantic_extra__ or {}
        for name, value in extras.items():
            if value is not None and not isinstance(value, Secret | SecretStr):
                extras[name] = Secret(value)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: keywords, then the environment, then .env (core fields, then the rest).
        return (
            init_settings,
            env_settings,
            _FieldsOnly(settings_cls, dotenv_settings),
            _PrefixedExtras(settings_cls, dotenv_settings),
            file_secret_settings,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def extra_values(self, names: set[str] | Mapping[str, Any]) -> dict[str, Any]:
        """The given ``names`` among the settings that are no core field, unmasked; ``None`` counts as absent."""
        extras = self.model_extra or {}
        return {name: _unmasked(value) for name, value in extras.items() if name in names and value is not None}


class _FieldsOnly(PydanticBaseSettingsSource):
    """A source narrowed to the model's own fields (pydantic-settings passes unprefixed .env keys on as extras)."""

    def __init__(self, settings_cls: type[BaseSettings], source: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {name: value for name, value in self._source().items() if name in self.settings_cls.model_fields}


class _PrefixedExtras(PydanticBaseSettingsSource):
    """``BROADCASTER_*`` variables that are no core field, from the environment and then ``.env``: the channels'."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        dotenv = self._dotenv.env_vars if isinstance(self._dotenv, DotEnvSettingsSource) else {}
        found: dict[str, Any] = {}
        for variables in ({k.lower(): v for k, v in os.environ.items()}, dotenv):
            for key, value in variables.items():
                name = key.lower().removeprefix(ENV_PREFIX.lower())
                if value and name != key.lower() and name not in self.settings_cls.model_fields:
                    found.setdefault(name, value)
        return found


def _unmasked(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, Secret) else value


def env_name(field: str) -> str:
    """The environment variable of a setting: ``smtp_host`` -> ``BROADCASTER_SMTP_HOST``."""
    return ENV_PREFIX + field.upper()


def configured(what: str, required: Mapping[str, object]) -> bool:
    """Whether the settings ``required`` (env name -> value) are all given: the one "all or none" rule.

    ``False`` when none is (the channel is disabled); when only some are, a ``ConfigError``
    names the missing ones. ``None``, an empty string or an empty secret counts as not given.
    """
    missing = [env for env, value in required.items() if not _given(value)]
    if len(missing) == len(required):
        return False
    if missing:
        raise ConfigError(f"{what} is half configured: set {', '.join(missing)}")
    return True


def _given(value: object) -> bool:
    if isinstance(value, Secret | SecretStr):
        value = value.get_secret_value()
    return value is not None and value != ""


class ChannelSettings(BaseModel):
    """A channel's own settings: each field is the variable's name without ``BROADCASTER_``.

    ``required`` lists the fields that enable the channel together: none given, the channel
    is disabled (``from_core`` returns ``None``); some given, a ``ConfigError`` names the
    missing variables. Invalid values (a validator's ``ValueError`` included) are a
    ``ConfigError`` naming the variable. The base class itself is the settings of a channel
    that needs none.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    title: ClassVar[str] = "channel"
    """How messages name the channel: "Zendesk is half configured: ..."."""
    required: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[Mapping[str, Any]] = {}
    """Values that configure the channel (the contract test builds every channel from them): nothing real."""

    @classmethod
    def env_names(cls) -> list[str]:
        """Every variable this class reads."""
        return [env_name(field) for field in cls.model_fields]

    @classmethod
    def from_core(cls, settings: Settings) -> Self | None:
        """This channel's settings among ``settings``' extras; ``None`` when its ``required`` are all absent."""
        values = settings.extra_values(cls.model_fields)
        if cls.required and not configured(cls.title, {env_name(f): values.get(f) for f in cls.required}):
            return None
        return cls.from_values(values)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Self:
        """``values`` (field name -> value) validated; an invalid one is a ``ConfigError`` naming its variable."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = [
                f"{env_name(str(error['loc'][0]))}: {error['msg']}"
                if error["loc"]
                else error["msg"].removeprefix("Value error, ")
                for error in exc.errors()
            ]
            raise ConfigError(f"{cls.title} settings are invalid: {'; '.join(problems)}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
