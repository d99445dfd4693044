"""The public sign-up's abuse limits: fixed windows in Redis, a 429 with ``Retry-After`` past them.

Per client IP for every channel, and for phones also per number and per number prefix, against
SMS pumping; then, only when a confirmation is about to go out, per address and, for SMS, a
budget of sign-up texts an hour for the whole installation. Without Redis, email sign-ups go on
unlimited (logged) and SMS sign-ups are refused (503): texts cost money.
"""

from __future__ import annotations

import logging

from broadcaster.domain.signups import check_sms_country, confirmation_key
from broadcaster.domain.subscribers import normalize_phone
from broadcaster.ratelimit import Limit, LimiterUnavailable, RateLimiter
from broadcaster.runtime import Runtime
from status_page.http import HTTPError

log = logging.getLogger(__name__)


def rate_limited(retry_after_s: int, what: str) -> HTTPError:
    return HTTPError(
        429,
        "rate_limited",
        f"too many {what}; try again in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


async def _limiter(rt: Runtime) -> RateLimiter:
    try:
        redis = await rt.queue.pool()
    except Exception as exc:  # redis-py's own errors as well as OSError
        raise LimiterUnavailable(str(exc)) from exc
    return RateLimiter(redis, namespace=rt.settings.queue_name)


async def check_limits(rt: Runtime, channel: str, address: str, ip: str) -> str:
    """Apply the abuse limits; returns the address (E.164 for a phone). Raises 429 or 503."""
    settings = rt.settings
    window = settings.subscribe_window_s
    try:
        limiter = await _limiter(rt)
        if channel != "sms":
            wait = await limiter.hit(f"subscribe:{channel}:ip:{ip}", settings.subscribe_email_per_ip, window)
            if wait is not None:
                raise rate_limited(wait, "sign-ups from this address")
            return address
        wait = await limiter.hit(f"subscribe:sms:ip:{ip}", settings.subscribe_sms_per_ip, window)
        if wait is not None:
            raise rate_limited(wait, "SMS sign-ups from this address")
        phone = normalize_phone(address, field="phone")
        check_sms_country(phone, settings.sms_countries)
        prefix = phone[: 1 + settings.subscribe_sms_prefix_digits]
        wait = await limiter.check(
            [
                Limit(f"subscribe:sms:number:{phone}", settings.subscribe_sms_per_number, window),
                Limit(f"subscribe:sms:prefix:{prefix}", settings.subscribe_sms_per_prefix, window),
            ]
        )
        if wait is not None:
            raise rate_limited(wait, "SMS sign-ups for this number")
        return phone
    except LimiterUnavailable as exc:
        _limits_unavailable(channel, exc)
        return address


async def check_confirmation_limits(rt: Runtime, channel: str, address: str) -> None:
    """Before a confirmation goes out: the per-address cap, and for SMS the hourly budget. Raises 429 or 503."""
    settings = rt.settings
    try:
        limiter = await _limiter(rt)
        key = confirmation_key(settings.secret_key.get_secret_value(), channel, address)
        wait = await limiter.hit(
            key, settings.subscribe_confirmations_per_address, settings.subscribe_confirmations_window_s
        )
        if wait is not None:
            raise rate_limited(wait, "confirmations sent to this address")
        if channel == "sms":
            wait = await limiter.hit("subscribe:sms:budget", settings.sms_hourly_budget, 3600)
            if wait is not None:
                raise rate_limited(wait, "SMS sign-ups here this hour")
    except LimiterUnavailable as exc:
        _limits_unavailable(channel, exc)


def _limits_unavailable(channel: str, exc: LimiterUnavailable) -> None:
    """Redis is down: SMS sign-ups are refused (texts cost money: no limits, no texts), others go on."""
    if channel == "sms":
        raise HTTPError(
            503, "unavailable", "SMS sign-up is unavailable right now; try again later", headers={"Retry-After": "60"}
        ) from exc
    log.warning("sign-up rate limits not checked: %s", exc)
