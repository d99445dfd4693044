"""The agent-desk channel: always on, renders the knowledge-base article, one live event per publish."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import BroadcastChannel
from broadcaster.delivery.registry import channel_classes
from broadcaster.errors import RetryableError
from broadcaster.models import ChannelKind
from channels.base import ChannelContext, render_template
from channels.desk import DeskChannel
from channels.zendesk import ZendeskChannel
from tests.support.factories import make_message


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    async def __call__(self, kind: str, data: Mapping[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("redis down")
        self.events.append((kind, dict(data)))


def test_facts_and_registration() -> None:
    facts = (DeskChannel.name, DeskChannel.kind, DeskChannel.title)
    assert facts == ("desk", ChannelKind.BROADCAST, "Agent desk")
    assert channel_classes()["desk"] is DeskChannel
    assert isinstance(DeskChannel(), BroadcastChannel)


def test_always_enabled_without_settings() -> None:
    channel = DeskChannel.from_settings(Settings(_env_file=None), ChannelContext())  # type: ignore[call-arg]
    assert isinstance(channel, DeskChannel)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"status": "resolved", "update_number": 3},
        {"drill": True},
        {"kind": "maintenance", "status": "in_progress", "impact": "maintenance"},
    ],
    ids=["first", "resolved", "drill", "maintenance"],
)
def test_render_is_the_knowledge_base_article(overrides: dict[str, Any]) -> None:
    message = make_message(**overrides)
    rendition = DeskChannel().render(message)
    assert rendition["body_html"] == render_template("knowledge_base/article.html", message=message)
    zendesk = ZendeskChannel("https://acme.zendesk.test", "a@example.com", "t", "1")
    assert rendition["body_html"] == zendesk.render(message)["body_html"], "the desk says what Zendesk says"
    assert rendition["title"] == zendesk.render(message)["title"]
    assert message.body_html in rendition["body_html"]
    assert rendition["url"] == "https://status.example.com/desk#incident-inc000000001"


async def test_publish_emits_a_live_event_and_keeps_the_update_number() -> None:
    events = Recorder()
    channel = DeskChannel(events)
    message = make_message(update_number=2)
    published = await channel.publish(message, channel.render(message), {"update_number": 1})
    assert events.events == [
        ("published", {"incident_id": "inc000000001", "update_id": "upd000000001", "channel": "desk"})
    ]
    assert published.provider_id == "upd000000001"
    assert published.thread == {"update_number": 2, "update_id": "upd000000001"}
    assert published.url == "https://status.example.com/desk#incident-inc000000001"


async def test_a_late_older_update_is_recorded_but_not_announced() -> None:
    events = Recorder()
    channel = DeskChannel(events)
    message = make_message(update_number=1)
    published = await channel.publish(message, channel.render(message), {"update_number": 3})
    assert events.events == []
    assert published.thread is None, "the stored state keeps pointing at the newer update"


async def test_publish_without_a_bus_still_succeeds() -> None:
    message = make_message()
    published = await DeskChannel().publish(message, DeskChannel().render(message), {})
    assert published.thread == {"update_number": 1, "update_id": "upd000000001"}


async def test_a_failing_bus_is_retried() -> None:
    channel = DeskChannel(Recorder(fail=True))
    message = make_message()
    with pytest.raises(RetryableError, match="redis down"):
        await channel.publish(message, channel.render(message), {})
