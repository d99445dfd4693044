"""The one posting service: every update, from every entry point, is recorded here.

``post(rt, request, actor=...)`` validates, then in ONE transaction writes the update, its
component changes, one outbox row per channel and the audit row (and claims the
idempotency key, when one is given); after the commit it enqueues the fan-out, tells live
pages and notifies the incident's contacts. The REST API, the console, the CLI, playbooks,
component notices and jobs all call it; each is a short adapter that builds a request
(``broadcaster.post_requests``).

``preview(rt, request, actor=...)`` is the same function as a dry run: it runs the very same
writes in a transaction that is rolled back, builds the ``Message`` the fan-out will build
from what was written (components restored on a resolve, impact derived, the number the
update gets) and renders it with each channel's own ``render``. The preview is the send.

Which channels an update goes to is decided once, in ``choose_channels``: the requested
ones (default: all enabled; the page's copies, the mirror, wherever the page goes), without
the ones that notify people when ``deliver_notifications`` is false, and without public
channels for a drill.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster import i18n
from broadcaster.actors import Actor
from broadcaster.alerts import publication
from broadcaster.config import Settings
from broadcaster.crisis import contacts, playbooks
from broadcaster.delivery.channel import PageCopy, Rendition
from broadcaster.delivery.registry import Registry
from broadcaster.domain import (
    audit,
    component_changes,
    contact_changes,
    contact_channels,
    idempotency,
    incidents,
    maintenance,
    maintenance_edits,
    maintenance_steps,
)
from broadcaster.domain.incidents import Posted
from broadcaster.errors import InputError
from broadcaster.jobs import contact_notices, page_copies
from broadcaster.models import ChannelKind
from broadcaster.post_requests import (
    ComponentNotice,
    ContactNotice,
    DraftPublication,
    FollowUp,
    MaintenanceEdit,
    MaintenanceStep,
    NewIncident,
    PostRequest,
    PostResult,
)
from broadcaster.render import localized
from broadcaster.runtime import Runtime
from broadcaster.schemas import UpdateIn

AfterWrite = Callable[[AsyncConnection, Posted], Awaitable[None]]

log = logging.getLogger(__name__)


class _DryRun(Exception):
    """Raised inside the preview's transaction so that nothing it wrote is kept."""


@dataclass
class _Plan:
    """What a request resolves to: the update to record (if any), the audit action, extras."""

    action: str
    target: str | None
    update: NewIncident | FollowUp | None
    after_write: AfterWrite | None = None
    details: dict[str, Any] | None = None


def choose_channels(
    registry: Registry, requested: Sequence[str] | None, *, deliver_notifications: bool, drill: bool
) -> tuple[str, ...]:
    """The channels an update goes to; an explicit name that is unknown or contradicts a flag is a 4xx."""
    enabled = registry.enabled
    if requested is not None:
        unknown = [name for name in requested if name not in enabled]
        if unknown:
            raise InputError(
                "unknown or disabled channels",
                {"channels": f"not enabled: {', '.join(unknown)}; enabled: {', '.join(enabled)}"},
            )
        if not deliver_notifications:
            loud = [name for name in requested if enabled[name].notifies]
            if loud:
                raise InputError(
                    "these channels notify people",
                    {"deliver_notifications": f"is false, but channels asks for {', '.join(loud)}"},
                )
        names: Sequence[str] = list(dict.fromkeys(requested))
        if incidents.STATUS_PAGE in names:  # a copy of the page (the mirror) goes wherever the page goes
            names = [*names, *(n for n, ch in enabled.items() if isinstance(ch, PageCopy) and n not in names)]
    else:
        names = [name for name, channel in enabled.items() if deliver_notifications or not channel.notifies]
    if drill:
        names = [name for name in names if enabled[name].publishes_drills]
    return tuple(names)


def check_translations(data: UpdateIn, settings: Settings) -> None:
    """Refuse a translation into a language the page does not offer, or into its default one."""
    codes = {}
    for code in data.translations:
        normal = i18n.normalize(code)
        if normal is None or normal not in settings.languages:
            offered = ", ".join(c for c in settings.languages if c != settings.default_language) or "none"
            problem = f"not an offered language (offered: {offered})"
            raise InputError("unknown language", {f"translations.{code}": problem})
        if normal == settings.default_language:
            raise InputError(
                "translation into the default language",
                {f"translations.{code}": f"{normal} is the page's default language: write it as the message"},
            )
        codes[code] = normal
    if any(code != normal for code, normal in codes.items()):
        data.translations = {codes[code]: value for code, value in data.translations.items()}


async def _plan(conn: AsyncConnection, rt: Runtime, request: PostRequest, actor: Actor) -> _Plan:
    if isinstance(request, NewIncident):
        check_translations(request.data, rt.settings)
        action = "maintenance.create" if request.data.kind == "maintenance" else "incident.create"
        scheduled, record = await maintenance.plan_new(conn, request, rt.settings)
        return _Plan("drill.open" if request.drill else action, None, scheduled, record)
    if isinstance(request, FollowUp):
        check_translations(request.data, rt.settings)
        return _Plan("update.post", request.incident_id, request)
    if isinstance(request, MaintenanceStep | MaintenanceEdit):
        if isinstance(request, MaintenanceEdit):
            step, action = await maintenance_edits.plan_edit(conn, request, rt.settings), "maintenance.edit"
        else:
            reached = [n for n, c in rt.registry.enabled.items() if c.kind is ChannelKind.SUBSCRIBER]
            step, action = (
                await maintenance_steps.plan_step(conn, request, rt.settings, reached),
                f"maintenance.{request.step}",
            )
        return _Plan(action, request.incident_id, step.update, step.after_write, step.details)
    if isinstance(request, ComponentNotice):
        before, update = await component_changes.plan(conn, request)
        return _Plan(
            "component.status",
            request.component_id,
            update,
            details={"old": before["status"], "new": request.status.value, "notify": request.notify},
        )
    if isinstance(request, ContactNotice):
        was, now, notice = await contact_changes.plan(conn, request)
        details = {
            "before": [contact_channels.as_json(c) for c in was],
            "channels": [contact_channels.as_json(c) for c in now],
            "notify": request.data.notify,
        }
        return _Plan("page.contact_channels", "page", notice, details=details)
    if isinstance(request, DraftPublication):
        inner, mark = await publication.plan(conn, request, list(rt.registry.enabled))
        plan = await _plan(conn, rt, inner, actor)
        inner_after = plan.after_write

        async def published(conn: AsyncConnection, posted: Posted) -> None:
            if inner_after is not None:
                await inner_after(conn, posted)
            await mark(conn, posted, str(actor))

        plan.action, plan.after_write = "draft.publish", published
        plan.details = {**(plan.details or {}), "draft_id": request.draft_id}
        return plan
    opening = await playbooks.plan_opening(
        conn, request.playbook_id, request.data, list(rt.registry.enabled), actor.name
    )

    async def put_contacts(conn: AsyncConnection, posted: Posted) -> None:
        added = await contacts.add_to_incident(conn, posted.incident_id, opening.contact_ids, opening.level)
        assert plan.details is not None
        plan.details["contacts"] = len(added)

    plan = _Plan(
        "playbook.drill" if request.data.drill else "playbook.open",
        request.playbook_id,
        opening.incident,
        put_contacts,
        {"level": opening.level},
    )
    return plan


async def _write(conn: AsyncConnection, rt: Runtime, plan: _Plan, actor: Actor) -> Posted | None:
    """Record the plan's update and its audit row in ``conn``'s transaction."""
    posted: Posted | None = None
    update = plan.update
    if isinstance(update, NewIncident):
        channels = choose_channels(
            rt.registry,
            update.data.channels,
            deliver_notifications=update.data.deliver_notifications,
            drill=update.drill,
        )
        posted = await incidents.create_incident(
            conn, update.data, channels, actor.name, drill=update.drill, meta=dict(update.meta) if update.meta else None
        )
    elif isinstance(update, FollowUp):
        incident = await incidents.get_incident_row(conn, update.incident_id)
        channels = choose_channels(
            rt.registry,
            update.data.channels,
            deliver_notifications=update.data.deliver_notifications,
            drill=bool(incident["drill"]),
        )
        posted = await incidents.add_update(conn, update.incident_id, update.data, channels, actor.name)
    if posted is not None and plan.after_write is not None:
        await plan.after_write(conn, posted)
    details = dict(plan.details or {})
    if posted is not None:
        details.update(incident_id=posted.incident_id, update_id=posted.update_id, channels=list(posted.channels))
    target = plan.target or (posted.incident_id if posted is not None else None)
    await audit.record(conn, str(actor), plan.action, target=target, **details)
    return posted


def _fingerprint(request: PostRequest) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if is_dataclass(value) and not isinstance(value, type):
            return {k: plain(v) for k, v in asdict(value).items()}
        return value

    fields = {name: plain(getattr(request, name)) for name in request.__dataclass_fields__}
    return idempotency.fingerprint("POST", type(request).__name__, fields)


async def post(rt: Runtime, request: PostRequest, *, actor: Actor, idempotency_key: str | None = None) -> PostResult:
    """Record ``request`` once, durably, then dispatch it; see the module docstring."""
    async with rt.engine.begin() as conn:
        if idempotency_key is not None:
            stored = await idempotency.claim(conn, idempotency_key, actor.scope, _fingerprint(request))
            if stored is not None:
                return PostResult(replayed=stored)
        plan = await _plan(conn, rt, request, actor)
        posted = await _write(conn, rt, plan, actor)
        if idempotency_key is not None and posted is not None:
            await idempotency.store_ref(conn, idempotency_key, actor.scope, posted)
    if isinstance(request, ContactNotice):
        await rt.bus.publish("page", {"changed": "contact_channels"})
    if posted is None:
        if isinstance(request, ComponentNotice):
            await rt.bus.publish("components", {"component_id": request.component_id})
        await page_copies.request_refresh(rt)  # no update for the fan-out to carry: the mirror is pushed as it is
        return PostResult()
    log.info(
        "posted %supdate %s of incident %s by %s, to %s",
        "drill " if posted.drill else "",
        posted.update_id,
        posted.incident_id,
        actor,
        ", ".join(posted.channels) or "no channel",
        extra={"update_id": posted.update_id, "incident_id": posted.incident_id},
    )
    return PostResult(posted=posted, queued=await dispatch(rt, posted))


async def preview(
    rt: Runtime, request: PostRequest, *, actor: Actor, language: str | None = None
) -> dict[str, Rendition]:
    """{channel: rendition} exactly as ``post`` would send it to readers of ``language`` (default:
    the page's; a broadcast channel with a language of its own always posts in that); nothing is kept."""
    previews = await preview_languages(rt, request, actor=actor, languages=[language or rt.settings.default_language])
    return next(iter(previews.values()), {})


async def preview_languages(
    rt: Runtime, request: PostRequest, *, actor: Actor, languages: Sequence[str]
) -> dict[str, dict[str, Rendition]]:
    """{language: {channel: rendition}} for each of ``languages``, from one dry run."""
    message = None
    channels: tuple[str, ...] = ()
    try:
        async with rt.engine.begin() as conn:
            posted = await _write(conn, rt, await _plan(conn, rt, request, actor), actor)
            if posted is not None:
                channels = posted.channels
                message = await incidents.load_message(
                    conn, posted.update_id, rt.settings.page_name, rt.settings.public_url, rt.settings.default_language
                )
            raise _DryRun
    except _DryRun:
        pass
    if message is None:
        return {}
    previews: dict[str, dict[str, Rendition]] = {}
    for reader in languages:
        renditions: dict[str, Rendition] = {}
        for name in channels:
            channel = rt.registry.enabled[name]
            if channel.kind is ChannelKind.BROADCAST:
                language = i18n.broadcast_language(rt.settings, name)
            else:  # as the worker picks it for a subscriber of ``reader``
                language = i18n.written_in(rt.settings, reader)
            with i18n.using(language):
                renditions[name] = channel.render(localized(message, language))
        previews[reader] = renditions
    return previews


async def dispatch(rt: Runtime, posted: Posted) -> bool:
    """After the commit: enqueue the fan-out, tell live pages, notify the incident's team.

    False when Redis is out of reach; the outbox relay enqueues the fan-out later.
    """
    queued = True
    for channel in posted.channels:
        queued = await rt.queue.enqueue_fanout(posted.update_id, channel) and queued
    await rt.bus.publish(
        "update",
        {
            "incident_id": posted.incident_id,
            "update_id": posted.update_id,
            "drill": posted.drill,
            "public": posted.public,
        },
    )
    await contact_notices.after_post(rt, posted.incident_id, posted.update_id)
    return queued
