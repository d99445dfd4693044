"""The long-lived objects a process needs (engine, channels, queue, events), built in one place."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.config import Settings
from broadcaster.db import make_engine
from broadcaster.delivery.channel import ChannelContext
from broadcaster.delivery.credential_store import SharedCredentials
from broadcaster.delivery.fanout import Fanout
from broadcaster.delivery.registry import Registry
from broadcaster.events import EventBus
from broadcaster.jobs.queue import Queue


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    registry: Registry
    queue: Queue
    bus: EventBus
    fanout: Fanout

    @classmethod
    def build(cls, settings: Settings, queue: Queue | None = None) -> Runtime:
        engine = make_engine(settings.database_url)
        bus = EventBus(settings.redis_url, stream=f"{settings.queue_name}:events")  # one stream per deployment
        credentials = SharedCredentials.from_settings(settings, engine)  # rotating tokens, shared by every worker
        registry = Registry.build(settings, ChannelContext(publish_event=bus.publish, credentials=credentials))
        queue = queue or Queue(settings.redis_url, settings.queue_name)
        return cls(settings, engine, registry, queue, bus, Fanout(settings, engine, registry, queue, bus))

    async def aclose(self) -> None:
        await self.fanout.aclose()  # the recorder's last writes and its thread (again is a no-op)
        await self.registry.aclose()
        await self.queue.aclose()
        await self.bus.aclose()
        await self.engine.dispose()
