"""Reading a source's JSON API with httpx: one client, paging, and clear errors instead of tracebacks.

The URL is the operator's own choice (a page they run or read), so it is not put through
``broadcaster.ssrf``. Credentials travel in headers only and never appear in an error,
a log line or the report.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from broadcaster.db import utcnow
from broadcaster.errors import BroadcasterError

MAX_PAGES = 10_000  # a source that never stops paging is refused past this
RETRIES = 4  # per request, on 429, 5xx and timeouts
MAX_WAIT_S = 60.0


class SourceError(BroadcasterError):
    """The source could not be read: unreachable, refused the credentials, or answered something unreadable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status that said no, if one did


def _retry_after_s(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("retry-after", "").strip()
    if header.isdigit():
        return min(MAX_WAIT_S, float(header))
    if header:
        try:
            wait_s: float = (parsedate_to_datetime(header) - utcnow()).total_seconds()
            return min(MAX_WAIT_S, max(0.0, wait_s))
        except (TypeError, ValueError):
            pass
    return min(MAX_WAIT_S, 0.5 * 2.0**attempt)


class JsonSource:
    """GETs against ``base_url`` with ``headers`` (the credentials), named ``name`` in every error."""

    def __init__(
        self,
        name: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        if not self.base_url.startswith(("https://", "http://")):
            raise SourceError(f"{name}: {base_url!r} is not an http(s) URL")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Accept": "application/json", "User-Agent": "broadcaster-import", **(headers or {})},
            timeout=timeout_s,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> JsonSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON of ``GET path``; a ``SourceError`` saying what went wrong otherwise."""
        where = f"GET {self.base_url}{path}"
        for attempt in range(RETRIES + 1):
            try:
                response = await self._client.get(path, params=dict(params or {}))
            except httpx.TimeoutException as exc:
                if attempt < RETRIES:
                    await asyncio.sleep(min(MAX_WAIT_S, 0.5 * 2.0**attempt))
                    continue
                raise SourceError(f"{self.name} did not answer in time ({type(exc).__name__}) on {where}") from None
            except httpx.TransportError as exc:
                raise SourceError(f"could not reach {self.name} at {self.base_url}: {type(exc).__name__}") from None
            if (response.status_code == 429 or response.status_code >= 500) and attempt < RETRIES:
                await asyncio.sleep(_retry_after_s(response, attempt))
                continue
            return self._read(response, where)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _read(self, response: httpx.Response, where: str) -> Any:
        status = response.status_code
        if status in (401, 403):
            raise SourceError(f"{self.name} refused the credentials (HTTP {status}) on {where}: check the key", status)
        if status == 404:
            raise SourceError(f"{self.name} has nothing at {where} (HTTP 404): check the id or URL", status)
        if not response.is_success:
            raise SourceError(f"{self.name} answered HTTP {status} to {where}", status)
        try:
            return response.json()
        except ValueError:
            raise SourceError(f"{self.name} answered {where} with something that is not JSON") from None

    async def pages(
        self, path: str, *, first: int = 1, per_page: int = 100, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[list[Any]]:
        """Each page of a ``page``/``per_page`` list (a JSON array), until a short or empty page."""
        for page in range(first, first + MAX_PAGES):
            items = await self.get(path, {**(params or {}), "page": page, "per_page": per_page, "limit": per_page})
            if not isinstance(items, list):
                raise SourceError(f"{self.name} answered GET {path} with something that is not a list")
            if items:
                yield items
            if len(items) < per_page:
                return
        raise SourceError(f"{self.name} kept paging {path} past {MAX_PAGES} pages")


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one (a field a source left null)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}
