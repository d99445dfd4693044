"""Ready bytes for the public page and JSON: built once per change, served with ETag and gzip.

The read path is a dict lookup and an ETag compare. Every web process keeps its own cache
and drops it when the event stream says something changed (``update``, ``published``,
``components``, ``page`` for the brand and contact channels, or ``resync`` after an outage),
so several processes behind one address stay in step; a short time-to-live refreshes in the
background (never on the reader's time) in case an event could not be published. A build
that fails keeps serving the last good bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Generic, TypeVar

from starlette.types import Scope, Send

from broadcaster.events import RESYNC

log = logging.getLogger(__name__)

T = TypeVar("T")
Headers = list[tuple[bytes, bytes]]
TextHeaders = list[tuple[str, str]]
MAX_REMEMBERED_VALUES = 64  # distinct header values (or kinds of answer) a lookup keeps

INVALIDATING_EVENTS = frozenset({"update", "published", "components", "page", RESYNC})  # page: brand, contacts
PAGE_CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30, stale-if-error=86400"
DEFAULT_TTL_S = 15.0
GZIP_MIN_BYTES = 512
VARY = "Accept-Encoding"
PAGE_VARY = "Accept-Encoding, Accept-Language, Cookie"  # an HTML page is in the reader's language


@dataclass(frozen=True, slots=True)
class Reply:
    """One ready answer: the status, its headers for either server interface, and the body."""

    status: int
    headers: Headers  # ASGI: (bytes, bytes)
    text_headers: TextHeaders  # RSGI: (str, str)
    body: bytes


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached response: its bytes, their gzip form, and ready header lists."""

    status: int
    body: bytes
    gzipped: bytes | None
    etag: bytes
    gzip_etag: bytes
    identity_headers: Headers
    gzip_headers: Headers
    not_modified_headers: Headers
    replies: dict[tuple[bool, bool, bool, tuple[tuple[bytes, bytes], ...]], Reply] = field(
        default_factory=dict, compare=False, repr=False
    )


def make_entry(
    body: bytes,
    content_type: str,
    *,
    status: int = 200,
    cache_control: str = PAGE_CACHE_CONTROL,
    last_modified: datetime | None = None,
    extra: Iterable[tuple[str, str]] = (),
    vary: str = VARY,
) -> Entry:
    """An ``Entry`` for ``body``: strong ETag from its hash (the same in every process)."""
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    etag, gzip_etag = f'"{digest}"'.encode(), f'"{digest}-gz"'.encode()
    gzipped = gzip.compress(body, 6, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    common: Headers = [(b"cache-control", cache_control.encode()), (b"vary", vary.encode())]
    if last_modified is not None:
        common.append((b"last-modified", format_datetime(last_modified, usegmt=True).encode()))
    common.extend((k.lower().encode(), v.encode()) for k, v in extra)
    typed = [(b"content-type", content_type.encode()), *common]
    identity = [*typed, (b"content-length", str(len(body)).encode()), (b"etag", etag)]
    zipped = [
        *typed,
        (b"content-encoding", b"gzip"),
        (b"content-length", str(len(gzipped or b"")).encode()),
        (b"etag", gzip_etag),
    ]
    return Entry(status, body, gzipped, etag, gzip_etag, identity, zipped, common)


_gzip_accepted: dict[bytes, bool] = {}  # Accept-Encoding value -> whether it takes gzip (few distinct values)


def _accepts_gzip(value: bytes) -> bool:
    known = _gzip_accepted.get(value)
    if known is not None:
        return known
    accepted = False
    for part in value.split(b","):
        coding, _, params = part.strip().partition(b";")
        if coding.strip() in (b"gzip", b"*"):
            q = params.strip()
            accepted = not (q.startswith(b"q=") and q[2:].strip(b" 0.") == b"")
            break
    if len(_gzip_accepted) >= MAX_REMEMBERED_VALUES:
        _gzip_accepted.clear()
    _gzip_accepted[value] = accepted
    return accepted


def _matches(value: bytes, entry: Entry) -> bool:
    if value == entry.etag or value == entry.gzip_etag:  # what a browser sends back: one tag, as given
        return True
    for tag in value.split(b","):
        tag = tag.strip().removeprefix(b"W/")
        if tag in (entry.etag, entry.gzip_etag, b"*"):
            return True
    return False


def reply_for(
    entry: Entry,
    *,
    head: bool,
    if_none_match: bytes | None,
    accept_encoding: bytes | None,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> Reply:
    """The answer to a request for ``entry``: 304 on a matching If-None-Match, gzip when accepted,
    no body on HEAD, ``extra`` headers appended. Built once per kind of answer and remembered on
    the entry (at most ``MAX_REMEMBERED_VALUES``: ``extra`` varies little, the security headers and
    at most a language cookie per offered language)."""
    zipped = entry.gzipped is not None and bool(accept_encoding) and _accepts_gzip(accept_encoding or b"")
    not_modified = bool(if_none_match) and entry.status == 200 and _matches(if_none_match or b"", entry)
    key = (zipped, not_modified, head, extra)
    reply = entry.replies.get(key)
    if reply is not None:
        return reply
    if not_modified:
        status, body = 304, b""
        headers = [*entry.not_modified_headers, (b"etag", entry.gzip_etag if zipped else entry.etag), *extra]
    else:
        status = entry.status
        body = b"" if head else ((entry.gzipped or b"") if zipped else entry.body)
        headers = [*(entry.gzip_headers if zipped else entry.identity_headers), *extra]
    text = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
    reply = Reply(status, headers, text, body)
    if len(entry.replies) >= MAX_REMEMBERED_VALUES:
        entry.replies.clear()
    entry.replies[key] = reply
    return reply


async def send_entry(scope: Scope, send: Send, entry: Entry, extra: Headers | None = None) -> None:
    """Answer with ``entry`` over ASGI (see ``reply_for``)."""
    accept = inm = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            inm = value
        elif name == b"accept-encoding":
            accept = value
    reply = reply_for(
        entry,
        head=scope["method"] == "HEAD",
        if_none_match=inm,
        accept_encoding=accept,
        extra=tuple(extra or ()),
    )
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
    await send({"type": "http.response.body", "body": reply.body})


class Missing(Exception):
    """A build found nothing to show (a 404, not a failure): never logged, never cached."""


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), Missing):
        log.warning("page build failed: %r", task.exception())


@dataclass(slots=True)
class _Slot(Generic[T]):
    value: T
    generation: int
    built_at: float


class PageCache:
    """Values built once per generation; ``invalidate`` starts a new generation.

    ``get`` returns the current value, waiting for a build only when there is none for
    this generation; concurrent readers share one build (no stampede). A value older than
    ``ttl_s`` is still served while a background build replaces it.
    """

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_entries: int = 512) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.generation = 0
        self._slots: dict[str, _Slot[Any]] = {}
        self._flights: dict[str, tuple[int, asyncio.Task[Any]]] = {}

    def invalidate(self) -> None:
        """Everything cached is out of date: the next read of each key waits for a fresh build."""
        self.generation += 1

    def peek(self, key: str) -> Any | None:
        slot = self._slots.get(key)
        return None if slot is None else slot.value

    def current(self, key: str) -> Any | None:
        """The value for ``key`` if it is of this generation and within its time-to-live, else None
        (``get`` then builds or refreshes it): the read path without a coroutine."""
        slot = self._slots.get(key)
        if slot is None or slot.generation != self.generation or time.monotonic() - slot.built_at > self.ttl_s:
            return None
        return slot.value

    async def get(self, key: str, build: Callable[[], Awaitable[T]], *, wait_if_old: bool = False) -> T:
        slot = self._slots.get(key)
        if slot is not None and slot.generation == self.generation:
            if time.monotonic() - slot.built_at > self.ttl_s:
                task = self._flight(key, build)
                if wait_if_old:
                    return await self._await(key, task)
            return slot.value  # type: ignore[no-any-return]
        return await self._await(key, self._flight(key, build))

    def _flight(self, key: str, build: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        flight = self._flights.get(key)
        if flight is not None and flight[0] == self.generation:
            return flight[1]
        task = asyncio.get_running_loop().create_task(self._build(key, build, self.generation))
        task.add_done_callback(_log_failure)
        self._flights[key] = (self.generation, task)
        return task

    async def _build(self, key: str, build: Callable[[], Awaitable[T]], generation: int) -> T:
        try:
            value = await build()
            self._slots.pop(key, None)
            self._slots[key] = _Slot(value, generation, time.monotonic())
            while len(self._slots) > self.max_entries:
                self._slots.pop(next(iter(self._slots)))
            return value
        finally:
            flight = self._flights.get(key)
            if flight is not None and flight[0] == generation:
                del self._flights[key]

    async def _await(self, key: str, task: asyncio.Task[T]) -> T:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            slot = self._slots.get(key)
            if slot is None:
                raise
            log.exception("rebuilding %s failed; serving the last good version", key)
            return slot.value  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        for _, task in list(self._flights.values()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self._flights.clear()


def page_cache(app: Any) -> PageCache:
    """The app's cache (made on first use)."""
    cache: PageCache | None = getattr(app.state, "page_cache", None)
    if cache is None:
        cache = PageCache()
        app.state.page_cache = cache
    return cache
