"""Posting a JSON body through the one posting service, as the API and CLI do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broadcaster import posting
from broadcaster.actors import Actor
from broadcaster.domain.incidents import Posted
from broadcaster.post_requests import request_from_body
from broadcaster.runtime import Runtime


async def post_body(
    rt: Runtime, body: Mapping[str, Any], incident_id: str | None = None, *, actor: Actor | None = None
) -> tuple[Posted, bool]:
    """(what was recorded, whether the fan-out was enqueued) for ``body``."""
    result = await posting.post(rt, request_from_body(body, incident_id), actor=actor or Actor.system("test"))
    assert result.posted is not None
    return result.posted, result.queued
