"""The ``mirror`` broadcast channel: the worker pushes the public page to a bucket or a directory.

It follows the one channel contract (``broadcaster.delivery.channel``): its facts as class
attributes, ``MirrorSettings``, a pure ``render`` (what the preview shows: which targets, which
pages the update touches) and ``publish``, which pushes the page as it is now and raises a
``RetryableError`` when a target is out of reach (the ledger retries with backoff; the next push
sends everything that changed since the last success). It is a ``PageCopy`` (``refresh``, for
changes that post no update and ``broadcaster mirror push``) and ``Checkable`` (the pre-flight
heads the bucket, or checks the directory is writable).

It lives in the web app's package because it renders the web app's pages; the core finds it
through the ``broadcaster.channels`` entry point (pyproject.toml), like any plug-in channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from broadcaster.config import ChannelSettings, Settings, env_name
from broadcaster.delivery.channel import ChannelContext, Published, Rendition, Thread
from broadcaster.errors import ConfigError, PermanentError, RetryableError
from broadcaster.message import Message
from broadcaster.models import ChannelKind, LimitUnit, humanize
from broadcaster.render import iso
from status_page.mirror.push import Pusher, PushResult
from status_page.mirror.targets import DirectoryTarget, S3Target, Target

_S3_DETAILS = ("mirror_s3_endpoint_url", "mirror_s3_prefix", "mirror_s3_region")


class MirrorSettings(ChannelSettings):
    """``BROADCASTER_MIRROR_S3_*`` (a bucket) and/or ``BROADCASTER_MIRROR_DIR`` (a directory).

    Either target enables the channel (``required`` names the bucket, the usual one; a directory
    alone is enough, and so is the older ``BROADCASTER_STATIC_EXPORT_DIR``). Bucket credentials
    come from the standard AWS variables, a profile or a role, never from these settings.
    """

    title: ClassVar[str] = "Mirror"
    required: ClassVar[tuple[str, ...]] = ("mirror_s3_bucket",)
    example: ClassVar[Mapping[str, Any]] = {
        "mirror_s3_bucket": "status-mirror",
        "mirror_s3_endpoint_url": "http://127.0.0.1:9",
        "mirror_s3_region": "us-east-1",
    }

    mirror_s3_bucket: str | None = None
    mirror_s3_endpoint_url: str | None = None  # empty: AWS itself
    mirror_s3_prefix: str = ""
    mirror_s3_region: str | None = None
    mirror_dir: Path | None = None
    mirror_max_age_s: int = 60  # Cache-Control max-age of pages, feeds and JSON on the mirror

    @classmethod
    def from_core(cls, settings: Settings) -> Self | None:
        config = cls.from_values(settings.extra_values(cls.model_fields))
        if config.mirror_dir is None and settings.static_export_dir is not None:
            config = config.model_copy(update={"mirror_dir": settings.static_export_dir})
        if not config.mirror_s3_bucket:
            stray = [env_name(f) for f in _S3_DETAILS if getattr(config, f)]
            if stray:
                raise ConfigError(
                    f"Mirror is half configured: set BROADCASTER_MIRROR_S3_BUCKET (given {', '.join(stray)})"
                )
            if config.mirror_dir is None:
                return None
        return config

    def targets(self, timeout_s: float) -> list[Target]:
        found: list[Target] = []
        if self.mirror_s3_bucket:
            found.append(
                S3Target(
                    self.mirror_s3_bucket,
                    prefix=self.mirror_s3_prefix,
                    endpoint_url=self.mirror_s3_endpoint_url or None,
                    region=self.mirror_s3_region or None,
                    timeout_s=timeout_s,
                )
            )
        if self.mirror_dir is not None:
            found.append(DirectoryTarget(self.mirror_dir))
        return found


class MirrorChannel:
    """The public page as static files on other infrastructure, pushed on every update."""

    name: ClassVar[str] = "mirror"
    kind: ClassVar[ChannelKind] = ChannelKind.BROADCAST
    title: ClassVar[str] = "Status mirror"
    limit: ClassVar[int | None] = None
    limit_unit: ClassVar[LimitUnit | None] = None
    notifies: ClassVar[bool] = False  # a page people visit: updated even when nobody is notified
    publishes_drills: ClassVar[bool] = False  # public: a drill never goes there
    settings_class: ClassVar[type[ChannelSettings]] = MirrorSettings

    def __init__(self, pusher: Pusher) -> None:
        self.pusher = pusher

    def __repr__(self) -> str:
        return f"MirrorChannel({', '.join(t.name for t in self.pusher.targets)})"

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        config = MirrorSettings.from_core(settings)
        if config is None:
            return None
        assert isinstance(config, MirrorSettings)
        targets = config.targets(settings.http_timeout_s)
        return cls(Pusher(settings, targets, max_age_s=config.mirror_max_age_s))

    def render(self, message: Message) -> Rendition:
        """Which targets get the page, and which of its pages this update changes."""
        return {
            "targets": [t.name for t in self.pusher.targets],
            "text": f"{message.incident_title}: {humanize(message.status)}",
            "pages": [
                "index.html",
                f"incidents/{message.incident_id}.html",
                "history.html",
                "history.atom",
                "history.rss",
                "api/v2/summary.json",
            ],
            "drill": message.drill,
        }

    async def publish(self, message: Message, rendition: Rendition, thread: Thread) -> Published:
        results = await self._push(full=False)
        sent = sum(r.uploaded for r in results)
        return Published(provider_id=f"{sent} objects sent")

    async def refresh(self, *, full: bool = False) -> str:
        return "\n".join(r.describe() for r in await self._push(full=full))

    async def _push(self, *, full: bool) -> list[PushResult]:
        results = await self.pusher.push(full=full)
        failed = [r for r in results if r.error is not None]
        if failed:
            reason = "; ".join(r.describe() for r in failed)
            if all(isinstance(r.error, PermanentError) for r in failed):
                raise PermanentError(reason)
            raise RetryableError(reason)
        return results

    async def copy_state(self) -> Mapping[str, Any]:
        states = await self.pusher.states()
        targets = [
            {
                "target": s["target"],
                "last_success_at": iso(s.get("last_success_at")),
                "last_attempt_at": iso(s.get("last_attempt_at")),
                "failing_since": iso(s.get("failing_since")),
                "last_error": s.get("last_error"),
                "objects": s.get("objects") or 0,
                "lag_s": s["lag_s"],
            }
            for s in states
        ]
        successes = [s["last_success_at"] for s in states if s.get("last_success_at")]
        return {
            "last_success_at": iso(min(successes)) if len(successes) == len(states) and successes else None,
            "lag_s": max((t["lag_s"] for t in targets), default=0.0),
            "targets": targets,
        }

    async def check(self) -> str:
        return "; ".join([await t.check() for t in self.pusher.targets])

    async def aclose(self) -> None:
        for target in self.pusher.targets:
            await target.aclose()
        await self.pusher.aclose()
