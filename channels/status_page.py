"""The status page as a channel: publishing refreshes every web process's page and live listeners.

The page itself reads the database, so "publishing" is an event on the bus: each web process
drops its cached renderings, rebuilds them and pushes the news to its ``/events`` listeners.
The ledger records the publication like any other channel, so "which update does the page
show" is answered by the same query as for every channel.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from channels.base import (
    ChannelContext,
    ChannelKind,
    ChannelSettings,
    LimitUnit,
    Message,
    Published,
    Rendition,
    RetryableError,
    Settings,
    Thread,
)

PUBLISHED_EVENT = "published"


class StatusPageChannel:
    """The public status page. Always enabled."""

    name: ClassVar[str] = "status_page"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = False  # a page updated in place, not a message: shown even without notifications
    title: ClassVar[str] = "Status page"
    limit: ClassVar[int | None] = None
    limit_unit: ClassVar[LimitUnit | None] = None
    publishes_drills: ClassVar[bool] = True  # kept off the public: see broadcaster.delivery.fanout
    settings_class: ClassVar[type[ChannelSettings]] = ChannelSettings  # always enabled: needs none

    def __init__(self, context: ChannelContext) -> None:
        self._context = context

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        return cls(context)

    def render(self, message: Message) -> Rendition:
        """What the page shows for this update (its timeline entry)."""
        return {
            "url": f"{message.public_url}#update-{message.update_id}",
            "title": message.incident_title,
            "status": message.status,
            "body_html": message.body_html,
            "body_text": message.body_text,
        }

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        data: dict[str, Any] = {
            "incident_id": message.incident_id,
            "update_id": message.update_id,
            "channel": self.name,
            "drill": message.drill,
        }
        if self._context.publish_event is not None:
            try:
                await self._context.publish_event(PUBLISHED_EVENT, data)
            except Exception as exc:  # any bus failure: the pages refresh on a later try
                raise RetryableError(f"status page: live event not published: {exc!r}") from exc
        return Published(provider_id=message.update_id, url=str(rendition["url"]))

    async def aclose(self) -> None:
        return None
