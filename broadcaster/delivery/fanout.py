"""The fan-out: from an outbox row to one ledger row per recipient, sent in batches.

``fanout(update, channel)`` renders nothing and sends nothing: it writes the ledger rows
and enqueues ``deliver_batch`` jobs with deterministic ids (``spreading``: in chunks, the
first batch queued while the rest is inserted, batches sized to the live job slots).
``deliver_batch`` claims the due rows of its range for this worker, renders the update once
for the channel, sends, and records each outcome as the channel reports it (``progress``,
written by the ``recorder``), so a crash re-sends only what was on the wire. Once the worker is stopping
(``stop``, or its heartbeat no longer reaches Redis) a batch claims nothing more, lets what
is on the wire finish and hands the rest back. ``relay`` re-enqueues whatever a dead worker,
a lost job or an unreachable Redis left behind (``recovery``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster import i18n
from broadcaster.config import Settings
from broadcaster.db import utcnow
from broadcaster.delivery import claims, ledger, outbox, recovery, spreading
from broadcaster.delivery.channel import BroadcastChannel, Outcome, Recipient, Rendition, SubscriberChannel
from broadcaster.delivery.circuit import CircuitBreaker, batch_ok
from broadcaster.delivery.progress import Progress, reporting
from broadcaster.delivery.recorder import Recorder
from broadcaster.delivery.registry import Registry
from broadcaster.domain.incidents import load_message
from broadcaster.errors import DeliveryError, PermanentError, RetryableError
from broadcaster.events import EventBus
from broadcaster.jobs import heartbeat
from broadcaster.jobs.queue import DELIVER_BATCH, Queue
from broadcaster.message import Message
from broadcaster.models import ChannelKind, DeliveryState
from broadcaster.render import localized
from broadcaster.security import LinkSigner

log = logging.getLogger(__name__)

UNSUBSCRIBE_MAX_AGE_S = 400 * 24 * 3600
DRAIN_S = 10.0  # how long a stopping worker waits for its outcomes to be written


def backoff_s(attempts: int, base_s: float, max_s: float, retry_after_s: float | None = None) -> float:
    """Exponential backoff with equal jitter; never sooner than the provider's Retry-After."""
    ceiling = min(max_s, base_s * (2 ** max(0, attempts - 1)))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return float(max(delay, retry_after_s or 0.0))


def recipient_links(settings: Settings, signer: LinkSigner, subscriber_id: str) -> tuple[str, str]:
    """The one-click unsubscribe and preferences links of a subscriber."""
    base = settings.public_url
    unsubscribe = f"{base}/unsubscribe?token={signer.sign('unsubscribe', subscriber_id)}"
    manage = f"{base}/subscriptions/manage?token={signer.sign('manage', subscriber_id)}"
    return unsubscribe, manage


@dataclass
class BatchReport:
    sent: int = 0
    failed: int = 0
    retry: int = 0
    handed_back: int = 0  # never attempted: the worker is stopping
    retry_in_s: float | None = None  # when the batch should run again


class Fanout:
    """The worker-side logic of the fan-out, free of arq so it can be driven directly in tests."""

    def __init__(
        self, settings: Settings, engine: AsyncEngine, registry: Registry, queue: Queue, bus: EventBus | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.registry = registry
        self.queue = queue
        self.bus = bus
        self.signer = LinkSigner(settings.secret_key.get_secret_value())
        self.circuit = CircuitBreaker(
            queue.pool, settings.queue_name, settings.circuit_failure_threshold, settings.circuit_cooldown_s
        )
        self.recorder = Recorder(engine)
        self.heartbeat: heartbeat.Heartbeat | None = None  # set in a worker: claims carry its id
        self._stopping = False
        self._messages: OrderedDict[str, Message] = OrderedDict()
        self._renditions: OrderedDict[tuple[str, str, str], Rendition] = OrderedDict()

    @property
    def worker_id(self) -> str | None:
        return None if self.heartbeat is None else self.heartbeat.worker_id

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called, or while this worker's heartbeat may have expired
        (its claims may be given to another worker: starting a send could send it twice)."""
        return self._stopping or (self.heartbeat is not None and not self.heartbeat.fresh)

    def stop(self) -> None:
        """The worker is stopping: batches claim nothing more and hand back what they did not attempt."""
        self._stopping = True

    async def message(self, update_id: str) -> Message:
        """The update's ``Message``, built once per process."""
        if update_id not in self._messages:
            async with self.engine.connect() as conn:
                self._messages[update_id] = await load_message(
                    conn, update_id, self.settings.page_name, self.settings.public_url, self.settings.default_language
                )
            while len(self._messages) > 64:
                self._messages.popitem(last=False)
        return self._messages[update_id]

    async def rendition(self, update_id: str, channel_name: str, language: str | None = None) -> Rendition:
        """The channel's rendition of the update for readers of ``language``, rendered once per process."""
        language = i18n.written_in(self.settings, language)
        key = (update_id, channel_name, language)
        if key not in self._renditions:
            channel = self.registry.get(channel_name)
            message = localized(await self.message(update_id), language)
            with i18n.using(language):
                self._renditions[key] = channel.render(message)
            while len(self._renditions) > 256:
                self._renditions.popitem(last=False)
        return self._renditions[key]

    async def fanout(self, update_id: str, channel_name: str) -> int:
        """Write the ledger rows for one outbox row and enqueue their batches; returns the batch count."""
        channel = self.registry.get(channel_name)
        if (
            channel.kind is ChannelKind.BROADCAST
            and not channel.publishes_drills
            and (await self.message(update_id)).drill
        ):
            # A drill never reaches social networks or knowledge bases: no ledger row, nothing sent.
            async with self.engine.begin() as conn:
                await outbox.mark_outbox(conn, update_id, channel_name, done=True)
            log.info(
                "drill update %s not published to %s",
                update_id,
                channel_name,
                extra={"update_id": update_id, "channel": channel_name},
            )
            return 0
        if channel.kind is ChannelKind.BROADCAST:
            async with self.engine.begin() as conn:
                await ledger.add_broadcast_row(conn, update_id, channel_name)
            batches, _ = await spreading.enqueue_batches(self.engine, self.queue, update_id, channel_name, 1)
        else:
            batches = await spreading.add_and_enqueue(self.engine, self.queue, self.settings, update_id, channel_name)
        async with self.engine.begin() as conn:
            await outbox.mark_outbox(conn, update_id, channel_name, done=True)
        log.debug(
            "fanned out update %s to %s in %d batches",
            update_id,
            channel_name,
            batches,
            extra={"update_id": update_id, "channel": channel_name},
        )
        return batches

    async def deliver_batch(self, update_id: str, channel_name: str, first_id: int, last_id: int) -> BatchReport:
        """Send the due rows of one range and record each outcome."""
        channel = self.registry.get(channel_name)
        report = BatchReport()
        if self.stopping:  # claim nothing: the job goes back in the queue for another worker
            report.retry_in_s = 0.0
            return report
        message = await self.message(update_id)
        if channel.kind is ChannelKind.BROADCAST:
            async with self.engine.connect() as conn:
                if await ledger.earlier_update_unfinished(conn, update_id, channel_name):
                    report.retry_in_s = 1.0
                    return report
        paused_s = await self.circuit.allow(channel_name)
        if paused_s is not None:  # provider paused: defer without claiming or burning attempts
            report.retry_in_s = paused_s
            return report
        async with self.engine.begin() as conn:
            rows = await claims.claim(conn, update_id, channel_name, first_id, last_id, self.worker_id)
            thread = await ledger.get_thread(conn, message.incident_id, channel_name)
        if not rows:
            return await self._schedule(update_id, channel_name, first_id, last_id, report)
        results: list[claims.Result] = []
        recorded: set[int] = set()  # rows whose outcome the recorder has written already
        handed_back: list[int] = []
        new_thread: dict[str, Any] | None = None
        inactive = [row for row in rows if not row.active]
        results.extend(
            claims.Result(row.id, DeliveryState.FAILED, error="unsubscribed before delivery") for row in inactive
        )
        active = [row for row in rows if row.active]
        errors: list[DeliveryError | None] = []  # what the provider answered, for the breaker
        if isinstance(channel, BroadcastChannel) and channel.kind is ChannelKind.BROADCAST:
            row = active[0] if active else None
            if row is not None:
                language = i18n.broadcast_language(self.settings, channel_name)
                try:
                    rendition = await self.rendition(update_id, channel_name, language)
                    with i18n.using(language):
                        published = await channel.publish(localized(message, language), rendition, thread)
                except DeliveryError as exc:
                    errors.append(exc)
                    results.append(self._failure(row.id, row.attempts, exc))
                else:
                    errors.append(None)
                    results.append(claims.Result(row.id, DeliveryState.SENT, provider_id=published.provider_id))
                    if published.thread is not None:
                        new_thread = dict(published.thread)
        elif isinstance(channel, SubscriberChannel) and active:
            progress, result_of, written = self._progress(active)
            outcomes: dict[int, Outcome] = {}
            try:
                with reporting(progress):
                    for language, group in self._by_language(active):
                        if self.stopping:  # the groups not begun go back in line
                            break
                        try:
                            with i18n.using(language):
                                outcomes.update(
                                    await channel.deliver(
                                        localized(message, language),
                                        await self.rendition(update_id, channel_name, language),
                                        [self._recipient(r) for r in group],
                                        thread,
                                    )
                                )
                        except DeliveryError as exc:
                            outcomes.update({row.id: exc for row in group})
            except asyncio.CancelledError:  # a job timeout or a forced stop: record what is known
                try:
                    await asyncio.shield(self._cut_off(active, progress))
                except Exception:  # the database away: the relay takes these rows back later
                    log.exception("could not hand back the rows of a cancelled batch")
                raise
            for row in active:
                outcome = progress.reported.get(row.id) or outcomes.get(row.id)
                if outcome is None and self.stopping:
                    handed_back.append(row.id)
                    continue
                outcome = outcome or RetryableError("no outcome reported by the channel")
                errors.append(outcome if isinstance(outcome, DeliveryError) else None)
                results.append(result_of.get(row.id) or self._result(row, outcome))
            if written:  # the recorder writes in order: once the last is in, all of this batch's are
                last = written[-1]
                await asyncio.wait([last], timeout=DRAIN_S)
                if last.done() and not last.cancelled():
                    recorded = set(progress.reported)
        verdict = batch_ok(
            sent=errors.count(None),
            permanent=sum(isinstance(e, PermanentError) for e in errors),
            retryable=sum(isinstance(e, RetryableError) for e in errors),
        )
        if verdict is not None:
            await self.circuit.record(channel_name, verdict)
        recipient_of = {row.id: row.recipient for row in rows}
        async with self.engine.begin() as conn:
            await claims.record(conn, [r for r in results if r.delivery_id not in recorded], recipient_of)
            await claims.hand_back(conn, handed_back)
            if new_thread is not None:
                await ledger.set_thread(conn, message.incident_id, channel_name, new_thread)
        for item in results:
            if item.state is DeliveryState.SENT:
                report.sent += 1
            elif item.state is DeliveryState.FAILED:
                report.failed += 1
            else:
                report.retry += 1
        report.handed_back = len(handed_back)
        if self.bus is not None:
            await self.bus.publish("deliveries", {"update_id": update_id, "channel": channel_name})
        if handed_back:
            report.retry_in_s = 0.0
            return report
        return await self._schedule(update_id, channel_name, first_id, last_id, report)

    def _by_language(self, rows: list[claims.ClaimedRow]) -> list[tuple[str, list[claims.ClaimedRow]]]:
        """A batch's rows by their reader's language, the default language's first."""
        groups: dict[str, list[claims.ClaimedRow]] = {self.settings.default_language: []}
        for row in rows:
            groups.setdefault(i18n.written_in(self.settings, row.language), []).append(row)
        return [(language, group) for language, group in groups.items() if group]

    def _progress(
        self, rows: list[claims.ClaimedRow]
    ) -> tuple[Progress, dict[int, claims.Result], list[asyncio.Future[None]]]:
        """The batch's ``Progress``: each reported outcome goes to the recorder at once."""
        by_id = {row.id: row for row in rows}
        result_of: dict[int, claims.Result] = {}
        written: list[asyncio.Future[None]] = []

        def record(delivery_id: int, outcome: Outcome) -> asyncio.Future[None]:
            row = by_id[delivery_id]
            result = result_of[delivery_id] = self._result(row, outcome)
            future = self.recorder.add(result, row.recipient)
            written[:] = [future]  # the latest is enough: groups are written in order
            return future

        return Progress(record, lambda: self.stopping), result_of, written

    async def _cut_off(self, rows: list[claims.ClaimedRow], progress: Progress) -> None:
        """After a cancelled ``deliver``: outcomes reported are written, the rest go back in line."""
        await self.recorder.drain(DRAIN_S)
        async with self.engine.begin() as conn:
            await claims.hand_back(conn, [r.id for r in rows if r.id not in progress.reported], attempted=True)

    def _result(self, row: claims.ClaimedRow, outcome: Outcome) -> claims.Result:
        if isinstance(outcome, DeliveryError):
            return self._failure(row.id, row.attempts, outcome)
        return claims.Result(row.id, DeliveryState.SENT, provider_id=outcome.provider_id)

    async def _schedule(
        self, update_id: str, channel_name: str, first_id: int, last_id: int, report: BatchReport
    ) -> BatchReport:
        async with self.engine.connect() as conn:
            due = await claims.earliest_retry(conn, update_id, channel_name, first_id, last_id)
        if due is not None:
            report.retry_in_s = max(0.05, (due - utcnow()).total_seconds())
        return report

    def _recipient(self, row: claims.ClaimedRow) -> Recipient:
        unsubscribe, manage = recipient_links(self.settings, self.signer, row.recipient)
        return Recipient(
            delivery_id=row.id,
            subscriber_id=row.recipient,
            address=row.address or "",
            unsubscribe_url=unsubscribe,
            manage_url=manage,
            secret=row.secret,
        )

    def _failure(self, delivery_id: int, attempts: int, error: DeliveryError) -> claims.Result:
        if isinstance(error, PermanentError):
            return claims.Result(
                delivery_id, DeliveryState.FAILED, error=error.reason, suppress=error.suppress_recipient
            )
        if attempts >= self.settings.max_attempts:
            return claims.Result(
                delivery_id, DeliveryState.FAILED, error=f"gave up after {attempts} attempts: {error.reason}"
            )
        retry_after = error.retry_after_s if isinstance(error, RetryableError) else None
        delay = backoff_s(attempts, self.settings.retry_base_s, self.settings.retry_max_s, retry_after)
        return claims.Result(
            delivery_id, DeliveryState.RETRY, error=error.reason, next_attempt_at=utcnow() + timedelta(seconds=delay)
        )

    async def relay(self) -> dict[str, int]:
        """Re-enqueue what is owed: outbox rows not fanned out, rows of dead workers, lost or stuck jobs."""
        settings = self.settings
        released = await self._release_dead_workers()
        async with self.engine.begin() as conn:
            released += await recovery.release_stale_claims(conn, settings.sending_lease_s, settings.batch_size)
        async with self.engine.connect() as conn:
            owed = await outbox.pending_outbox(conn)
        fanouts = 0
        for update_id, channel_name in owed:
            fanouts += await self.queue.enqueue_fanout(update_id, channel_name)
        stale_s = max(settings.sending_lease_s, settings.job_timeout_s) + settings.relay_interval_s
        async with self.engine.connect() as conn:
            overdue = await recovery.overdue_ranges(conn, stale_s, settings.batch_size)
        requeued = await self.requeue([*released, *overdue])
        return {"released": len(released), "fanouts": fanouts, "batches": len(requeued)}

    async def requeue(self, ranges: list[ledger.RowRange]) -> list[ledger.RowRange]:
        """Enqueue ``deliver_batch`` for each range under a fresh job id; the ranges that made it."""
        stamp = int(utcnow().timestamp())
        requeued: list[ledger.RowRange] = []
        for update_id, channel_name, first_id, last_id in ranges:
            job_id = f"relay:{update_id}:{channel_name}:{first_id}:{last_id}:{stamp}"
            if await self.queue.enqueue(DELIVER_BATCH, update_id, channel_name, first_id, last_id, job_id=job_id):
                requeued.append((update_id, channel_name, first_id, last_id))
        if requeued:
            async with self.engine.begin() as conn:
                await recovery.touch(conn, requeued)
        return requeued

    async def _release_dead_workers(self) -> list[ledger.RowRange]:
        """The rows claimed and the batches taken by workers whose heartbeat is gone."""
        try:
            redis = await self.queue.pool()
            async with self.engine.connect() as conn:
                holders = await recovery.claimants(conn) | await heartbeat.registered(redis, self.queue.queue_name)
            gone = await heartbeat.dead(redis, self.queue.queue_name, holders - {self.worker_id})
            taken = [
                r for worker in sorted(gone) for r in await heartbeat.held_ranges(redis, self.queue.queue_name, worker)
            ]
        except Exception as exc:  # Redis away: nobody can be told dead now; the lease still holds
            log.info("worker liveness unknown (%s)", exc)
            return []
        if not gone:
            return []
        async with self.engine.begin() as conn:
            released = await recovery.release_claims_of(conn, gone, self.settings.batch_size)
        for worker in gone:
            await heartbeat.forget(redis, self.queue.queue_name, worker)
        log.info(
            "took back %d claimed ranges and %d taken batches of stopped workers %s",
            len(released),
            len(taken),
            ", ".join(sorted(gone)),
        )
        return [*released, *taken]

    async def release_own_claims(self) -> int:
        """On a clean stop, once no job runs: whatever this worker still holds goes back in line now."""
        if self.worker_id is None:
            return 0
        await self.recorder.drain(DRAIN_S)
        async with self.engine.begin() as conn:
            released = await recovery.release_claims_of(conn, {self.worker_id}, self.settings.batch_size)
        return len(await self.requeue(released))

    async def aclose(self) -> None:
        await self.recorder.drain(DRAIN_S)
        await self.recorder.aclose()
