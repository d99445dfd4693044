"""The three ways in, each from its URL and credentials to a ``Bundle``: Statuspage's API, a public page, Cachet."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from broadcaster.importing import cachet, cachet3, public_v2, statuspage
from broadcaster.importing.fetch import JsonSource, SourceError
from broadcaster.importing.model import Bundle, Kind, Skip
from broadcaster.importing.progress import Progress

CACHET_APIS = ("auto", "2", "3")


async def from_statuspage(
    page_id: str,
    api_key: str,
    progress: Progress,
    *,
    base_url: str = statuspage.API_URL,
    timeout_s: float = 15.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Bundle:
    """Statuspage's REST API v1 for ``page_id``, authenticated with ``Authorization: OAuth KEY``."""
    if not api_key.strip():
        raise SourceError("Statuspage: the API key is empty")
    headers = {"Authorization": f"OAuth {api_key.strip()}"}
    async with JsonSource("Statuspage", base_url, headers, timeout_s=timeout_s, transport=transport) as source:
        return await statuspage.fetch(source, page_id, progress)


async def from_public_page(
    url: str, progress: Progress, *, timeout_s: float = 15.0, transport: httpx.AsyncBaseTransport | None = None
) -> Bundle:
    """A page's public ``/api/v2`` JSON (no credentials)."""
    async with JsonSource("the public page", url, timeout_s=timeout_s, transport=transport) as source:
        return await public_v2.fetch_public(source, progress)


def zone_named(name: str) -> ZoneInfo:
    """The time zone ``name`` (``Europe/Berlin``); a ``SourceError`` naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SourceError(f"unknown time zone {name!r} (use a name like UTC or Europe/Berlin)") from None


async def _cachet_api(source: JsonSource) -> str:
    """``"2"`` or ``"3"``: which API answers its ping."""
    try:
        await source.get("/api/v1/ping")
        return "2"
    except SourceError as exc:
        if exc.status != 404:
            raise
    await source.get("/api/ping")
    return "3"


async def from_cachet(
    url: str,
    token: str | None,
    progress: Progress,
    *,
    api: str = "auto",
    zone: str = "UTC",
    timeout_s: float = 15.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Bundle:
    """A Cachet at ``url``: 2.x (``X-Cachet-Token``) or 3.x (``Bearer``); subscribers only with a token."""
    if api not in CACHET_APIS:
        raise SourceError(f"Cachet: --api must be one of {', '.join(CACHET_APIS)}")
    tz = zone_named(zone)
    token = (token or "").strip() or None
    headers = {"X-Cachet-Token": token, "Authorization": f"Bearer {token}"} if token else {}
    async with JsonSource("Cachet", url, headers, timeout_s=timeout_s, transport=transport) as source:
        version = api if api != "auto" else await _cachet_api(source)
        bundle = Bundle(source=f"cachet:{source.base_url}", label=f"Cachet {version}.x at {source.base_url}")
        reader = cachet.Reader(bundle, tz)
        fetch = cachet.fetch_v2 if version == "2" else cachet3.fetch_v3
        await fetch(source, reader, progress, token is not None)
    if token is None:
        bundle.skipped.append(Skip(Kind.SUBSCRIBERS, "all", "no --token: Cachet shows its subscribers to a token only"))
    return bundle
