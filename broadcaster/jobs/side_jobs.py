"""Helpers for arq jobs outside the fan-out (confirmations, team notices)."""

from __future__ import annotations

import logging
from typing import Any

from arq import Retry

from broadcaster.config import Settings
from broadcaster.delivery.fanout import backoff_s
from broadcaster.errors import RetryableError

log = logging.getLogger(__name__)


def retry_or_give_up(ctx: dict[str, Any], exc: RetryableError, settings: Settings, max_tries: int, what: str) -> str:
    """Raise arq's ``Retry`` with the fan-out's backoff, or after ``max_tries`` log and return a failure note."""
    tries = int(ctx.get("job_try") or 1)
    if tries >= max_tries:
        log.warning("%s given up: %s", what, exc.reason)
        return f"failed: {exc.reason}"
    raise Retry(defer=backoff_s(tries, settings.retry_base_s, settings.retry_max_s, exc.retry_after_s)) from exc
