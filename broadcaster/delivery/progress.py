"""A batch's progress as it happens, so that a crash re-sends only what was on the wire.

While ``deliver`` runs, ``current_progress()`` is the batch's ``Progress``. A subscriber
channel reports each outcome the moment it knows it, and stops starting sends once the
worker is stopping (what it did not attempt is handed back to another worker)::

    progress = current_progress()
    written = None
    for recipient in recipients:
        if progress.stopping:
            break
        outcome = await send(recipient)
        if written is not None:
            await written  # never more than one outcome of this loop waiting for the ledger
        written = progress.report(recipient.delivery_id, outcome)

``report`` returns a future that completes once the outcome is in the ledger: the fan-out
writes what every batch of the worker reported meanwhile in one transaction. Awaiting it
before the next send keeps what a SIGKILL could re-send to what was in flight. The mapping
``deliver`` returns stays the full account; a channel that never reports still works, and
then a crash re-sends its whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from broadcaster.delivery.channel import Outcome

Record = Callable[[int, Outcome], "asyncio.Future[None]"]


class Progress:
    """One batch's reporting line: ``report`` outcomes, stop when ``stopping``."""

    def __init__(self, record: Record | None = None, stopping: Callable[[], bool] = lambda: False) -> None:
        self._record = record
        self._stopping = stopping
        self.reported: dict[int, Outcome] = {}

    @property
    def stopping(self) -> bool:
        """True once the worker is stopping: start no new send, finish those on the wire."""
        return self._stopping()

    def report(self, delivery_id: int, outcome: Outcome) -> asyncio.Future[None]:
        """Record ``outcome`` for the row ``delivery_id`` now; the future completes once it is written."""
        self.reported[delivery_id] = outcome
        if self._record is not None:
            return self._record(delivery_id, outcome)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


_current: ContextVar[Progress | None] = ContextVar("delivery_progress", default=None)


def current_progress() -> Progress:
    """The running batch's ``Progress`` (outside a batch: one that records nothing and never stops)."""
    return _current.get() or Progress()


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Make ``progress`` the current one while the block runs (the fan-out, around ``deliver``)."""
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)
