"""The real client address behind trusted proxies: ``scope["client"]`` taken from ``X-Forwarded-For`` or ``Forwarded``.

Only a peer inside ``BROADCASTER_TRUSTED_PROXIES`` is believed; from any other peer the headers
are ignored. Each proxy appends the address it saw, so the client is the right-most address of
the chain that is not itself a trusted proxy: whatever lies left of it was written by the client
and may be made up. An entry that is no address (``unknown``, an obfuscated ``_name``) ends the
walk at the last trusted hop, so a client cannot use one to step past it.

``X-Forwarded-For`` is read when present, else ``Forwarded: for=`` (RFC 7239): nginx, Caddy,
Traefik and most load balancers set the former and pass a client's ``Forwarded`` through
untouched, so preferring ``Forwarded`` would let a client choose its own address there.

This is the one rule for every server: ``broadcaster serve`` runs uvicorn with its own proxy
handling off, and granian has none. The app builds its links from ``BROADCASTER_PUBLIC_URL``,
so the scheme a proxy reports is not needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from starlette.types import ASGIApp, Receive, Scope, Send

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def parse_address(value: str) -> Address | None:
    """An address as proxies write it (``203.0.113.7``, ``203.0.113.7:4711``, ``[2001:db8::1]:4711``,
    ``"[2001:db8::1]"``), IPv4-mapped IPv6 as IPv4; ``None`` for anything else."""
    value = value.strip().strip('"').strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.partition(":")[0]
    try:
        address = ip_address(value)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_for(header: str) -> list[str]:
    """The ``for=`` values of a ``Forwarded`` header, left to right (an element without one gives "")."""
    values = []
    for element in header.split(","):
        found = ""
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "for":
                found = value
        values.append(found)
    return values


def forwarded_chain(headers: Sequence[tuple[bytes, bytes]]) -> list[str]:
    """The addresses the proxies reported, left to right: ``X-Forwarded-For`` when present, else ``Forwarded``."""
    xff = [v.decode("latin-1") for k, v in headers if k.lower() == b"x-forwarded-for"]
    if xff:
        return [item for value in xff for item in value.split(",")]
    forwarded = [v.decode("latin-1") for k, v in headers if k.lower() == b"forwarded"]
    return [item for value in forwarded for item in forwarded_for(value)]


def real_client(peer: Address, chain: Sequence[str], trusted: Sequence[Network]) -> Address:
    """The client behind ``peer``: the right-most address of ``chain`` that is not trusted (``peer`` when untrusted)."""

    def is_trusted(address: Address) -> bool:
        return any(address in network for network in trusted)

    if not is_trusted(peer):
        return peer
    client = peer
    for value in reversed(chain):
        address = parse_address(value)
        if address is None:
            break
        client = address
        if not is_trusted(address):
            break
    return client


class ClientAddressMiddleware:
    """Rewrites ``scope["client"]`` to the address behind trusted proxies (see the module docstring)."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network] = ()) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if self.trusted and scope["type"] in ("http", "websocket") and client:
            peer = parse_address(str(client[0]))
            if peer is not None:
                address = real_client(peer, forwarded_chain(scope.get("headers") or []), self.trusted)
                if address != peer:
                    scope = {**scope, "client": (str(address), 0)}
        await self.app(scope, receive, send)
