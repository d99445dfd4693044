"""The built-in agent desk: what the contact centre reads at ``/desk``, told when an update lands.

The desk renders the same article as Zendesk and Freshdesk (``templates/knowledge_base/``),
so an agent on the built-in desk and one in a help-centre tool read the same words. The
web app draws the desk from the database; publishing an update here records it in the
ledger like any channel and emits a ``published`` live event, on which every web process
drops its cached desk and pushes a refresh to the agents' browsers.

Always enabled: it needs no settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Self

from broadcaster.message import one_line
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
    render_template,
)

PublishEvent = Callable[[str, Mapping[str, Any]], Awaitable[None]]
EVENT_KIND = "published"


class DeskChannel:
    """Publishes an update to the built-in agent desk.

    ``thread`` holds the ``update_number`` and ``update_id`` the desk last announced; an
    older update arriving late is recorded but not announced again.
    """

    name: ClassVar[str] = "desk"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    notifies: ClassVar[bool] = False  # a page updated in place, not a message: shown even without notifications
    title: ClassVar[str] = "Agent desk"
    limit: ClassVar[int | None] = None
    limit_unit: ClassVar[LimitUnit | None] = None
    publishes_drills: ClassVar[bool] = True  # kept off the public: see broadcaster.delivery.fanout
    settings_class: ClassVar[type[ChannelSettings]] = ChannelSettings  # always enabled: needs none

    def __init__(self, publish_event: PublishEvent | None = None) -> None:
        self._publish_event = publish_event

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        return cls(context.publish_event)

    def render(self, message: Message) -> Rendition:
        return {
            "title": one_line(render_template("knowledge_base/title.txt", message=message)),
            "body_html": render_template("knowledge_base/article.html", message=message),
            "url": desk_url(message),
        }

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        url = desk_url(message)
        if _int(thread.get("update_number")) > message.update_number:
            return Published(provider_id=message.update_id, url=url)
        if self._publish_event is not None:
            data = {"incident_id": message.incident_id, "update_id": message.update_id, "channel": self.name}
            try:
                await self._publish_event(EVENT_KIND, data)
            except Exception as exc:  # any bus failure: retry the announcement later
                raise RetryableError(f"desk: live event not published: {exc!r}") from exc
        state = {"update_number": message.update_number, "update_id": message.update_id}
        return Published(provider_id=message.update_id, url=url, thread=state)

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return "DeskChannel()"


def desk_url(message: Message) -> str:
    """Where the incident sits on the desk."""
    return f"{message.page_url}/desk#incident-{message.incident_id}"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
