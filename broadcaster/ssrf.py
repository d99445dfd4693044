"""Where broadcaster may send a request that someone else chose the URL of: public addresses only.

A subscriber's webhook URL is checked when it is stored and again before every delivery,
because DNS may point the name elsewhere in between (rebinding). Loopback, private,
link-local (cloud metadata), reserved, multicast and unspecified addresses are refused;
``BROADCASTER_WEBHOOK_ALLOW_PRIVATE`` turns the check off for development and tests::

    if (reason := await refuse_private(url)) is not None:
        raise PermanentError(reason)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


def is_public_ip(address: str) -> bool:
    """False for loopback, private, link-local, reserved, multicast and unspecified addresses."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified
    )


def refuse_private_literal(url: str) -> str | None:
    """Why ``url`` is refused when its host is an IP address that is not public; ``None`` otherwise.

    Needs no DNS, so it can run where nothing may wait; a host name is left to ``refuse_private``.
    """
    host = urlsplit(url).hostname
    if not host:
        return "the URL has no host"
    try:
        public = is_public_ip(host)
    except ValueError:
        return None  # a name, not an address
    return None if public else _refusal(host)


async def refuse_private(url: str) -> str | None:
    """Why ``url`` is refused (its host is, or resolves now to, a non-public address), or ``None``.

    A host that does not resolve is not refused: the request itself then fails, as a retryable
    connection error.
    """
    if (reason := refuse_private_literal(url)) is not None:
        return reason
    host = urlsplit(url).hostname
    assert host  # refuse_private_literal refused the URL without one
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    if any(not is_public_ip(str(info[4][0])) for info in infos):
        return _refusal(host)
    return None


def _refusal(host: str) -> str:
    return f"refused: {host} resolves to a private or loopback address"
