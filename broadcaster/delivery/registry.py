"""The channel registry: built-ins listed in one place, third parties through entry points.

Third-party channels register under the ``broadcaster.channels`` entry-point group as
``name = "package.module:Class"`` (docs/channels.md, "Write a channel"). A duplicate name is
an error, and so is a class that lacks one of the contract's facts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from pydantic.fields import FieldInfo

from broadcaster.config import Settings, env_name
from broadcaster.delivery.channel import Channel, ChannelContext
from broadcaster.errors import ConfigError

log = logging.getLogger(__name__)

BUILTIN_CHANNELS: tuple[str, ...] = (
    "channels.status_page:StatusPageChannel",
    "channels.desk:DeskChannel",
    "channels.webhook:WebhookChannel",
    "channels.email:EmailChannel",
    "channels.sms:SmsChannel",
    "channels.zendesk:ZendeskChannel",
    "channels.freshdesk:FreshdeskChannel",
    "channels.mastodon:MastodonChannel",
    "channels.bluesky:BlueskyChannel",
    "channels.x:XChannel",
    "channels.slack:SlackChannel",
    "channels.slack:SlackBotChannel",
    "channels.teams:TeamsChannel",
    "channels.discord:DiscordChannel",
    "channels.discord:DiscordForumChannel",
    "channels.google_chat:GoogleChatChannel",
)
ENTRY_POINT_GROUP = "broadcaster.channels"


FACTS: tuple[str, ...] = (
    "name",
    "kind",
    "title",
    "limit",
    "limit_unit",
    "notifies",
    "publishes_drills",
    "settings_class",
)
"""The class attributes every channel declares (``broadcaster.delivery.channel.Channel``)."""


def _load(path: str) -> type[Channel]:
    cls = EntryPoint(name="", value=path, group=ENTRY_POINT_GROUP).load()
    if not isinstance(cls, type):
        raise ConfigError(f"channel {path!r} is not a class")
    missing = [fact for fact in FACTS if fact not in dir(cls)]
    if missing:
        raise ConfigError(f"channel {path!r} does not declare {', '.join(missing)}")
    return cls


def channel_classes(extra: Iterable[str] = ()) -> dict[str, type[Channel]]:
    """Every known channel class by name: built-ins, entry points, then ``extra`` paths."""
    paths = [*BUILTIN_CHANNELS, *(ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)), *extra]
    classes: dict[str, type[Channel]] = {}
    for path in paths:
        cls = _load(path)
        if cls.name in classes:
            raise ConfigError(f"two channels are named {cls.name!r}: {classes[cls.name]!r} and {cls!r}")
        classes[cls.name] = cls
    return classes


def setting_fields(classes: Mapping[str, type[Channel]] | None = None) -> dict[str, FieldInfo]:
    """Every setting by field name (``BROADCASTER_`` + upper case): the core's, then each channel's.

    ``classes`` defaults to every known channel; two settings of one name are a ``ConfigError``.
    """
    fields = dict(Settings.model_fields)
    for channel in (channel_classes() if classes is None else classes).values():
        for name, field in channel.settings_class.model_fields.items():
            if name in fields and field is not fields[name]:
                raise ConfigError(f"channel {channel.name!r} declares the setting {name!r}, which is taken")
            fields[name] = field
    return fields


@dataclass
class Registry:
    """The channels of this process: which exist, which are enabled, built once."""

    classes: dict[str, type[Channel]]
    enabled: dict[str, Channel]

    @classmethod
    def build(cls, settings: Settings, context: ChannelContext | None = None) -> Registry:
        context = context or ChannelContext()
        classes = channel_classes()
        unread = sorted(set(settings.model_extra or ()) - set(setting_fields(classes)))
        if unread:  # a misspelt channel variable would otherwise leave the channel off without a word
            log.warning("no channel reads %s", ", ".join(env_name(name) for name in unread))
        enabled: dict[str, Channel] = {}
        for name, channel_cls in classes.items():
            channel = channel_cls.from_settings(settings, context)
            if channel is not None:
                enabled[name] = channel
        return cls(classes=classes, enabled=enabled)

    def get(self, name: str) -> Channel:
        try:
            return self.enabled[name]
        except KeyError:
            raise ConfigError(f"channel {name!r} is not enabled") from None

    async def aclose(self) -> None:
        for channel in self.enabled.values():
            await channel.aclose()
