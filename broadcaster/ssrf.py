"""Where broadcaster may send a request whose URL someone else chose: public addresses only.

Any URL a user supplies (subscriber webhooks; chat webhooks) is vetted when it is stored
(``vet_url``) and again at every connection, by the one transport that makes them::

    client = httpx.AsyncClient(transport=PinnedTransport(allow_private=settings.webhook_allow_private))

The host is looked up once per connection (``loop.getaddrinfo``, with a timeout); every
address in the answer must be public (``is_public_ip``); the connection goes to one of
those very addresses, while the URL, the ``Host`` header and TLS (SNI, the certificate
check) keep the name. No second lookup happens, so DNS rebinding has nothing to rebind.
A host that does not resolve is refused: the check fails closed.

``BROADCASTER_WEBHOOK_ALLOW_PRIVATE`` (development and tests) accepts any address, and
still looks up once and pins.

A refusal is a ``PermanentError`` (``TargetRefused``); a lookup that timed out or met
resolver trouble is a ``RetryableError`` (``ResolveFailed``). Both name the host only: a
webhook URL's path and query often are its secret.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from broadcaster.errors import PermanentError, RetryableError

RESOLVE_TIMEOUT_S = 5.0
"""The longest a lookup may take (at delivery: at most the request's connect timeout)."""

PRIVATE = "resolves to a private or loopback address"
UNRESOLVED = "does not resolve"

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; raises ``socket.gaierror`` as ``getaddrinfo`` does."""


class TargetRefused(PermanentError):
    """The host is, or resolves to, an address broadcaster may not call, or it does not resolve."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"refused: {host} {why}")
        self.host = host
        self.why = why


class ResolveFailed(RetryableError):
    """The lookup timed out or the resolver failed for now: nothing was called, try again later."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"{host} did not resolve: {why}")
        self.host = host


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the IPv4 address in the last 32 bits
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ``::a.b.c.d``
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: the site's own translator


def is_public_ip(address: str) -> bool:
    """True only for a global unicast address, and for IPv6 carrying an IPv4 address, a global one inside.

    False for loopback, private, shared (CGNAT ``100.64.0.0/10``), link-local, documentation,
    reserved, multicast and unspecified addresses, for 6to4, Teredo, NAT64, IPv4-mapped and
    -compatible IPv6 around any of those (``2002:7f00:1::`` is 127.0.0.1), and for any address
    with a zone id (``fe80::1%eth0``). ``ValueError`` when ``address`` is not an IP address.
    """
    ip = ipaddress.ip_address(address)
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return True
    if ip.scope_id or ip in _LOCAL_NAT64:
        return False
    inner = _embedded_ipv4(ip)
    return inner is None or is_public_ip(str(inner))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address (the server's is public by construction)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refuse_private_literal(url: str) -> str | None:
    """Why ``url`` is refused when its host is an IP address that is not public; ``None`` otherwise.

    Needs no DNS, so it can run where nothing may wait; a host name is left to ``vet_url``.
    """
    host = urlsplit(url).hostname
    if not host:
        return "the URL has no host"
    try:
        public = is_public_ip(host)
    except ValueError:
        return None  # a name, not an address
    return None if public else str(TargetRefused(host, PRIVATE))


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives ``host`` now, looked up off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


resolve: Resolver = system_resolve
"""How every host is looked up: the one seam, where tests put a resolver they control."""

_NO_SUCH_NAME = {socket.EAI_NONAME, socket.EAI_NODATA, socket.EAI_ADDRFAMILY, socket.EAI_SERVICE}


async def vetted_addresses(
    host: str, port: int = 443, *, allow_private: bool = False, timeout_s: float = RESOLVE_TIMEOUT_S
) -> list[str]:
    """The addresses to connect to for ``host``, looked up once, now: all public unless ``allow_private``.

    ``TargetRefused`` when one is not public or there is no such name (an empty answer
    included); ``ResolveFailed`` when the lookup timed out or the resolver failed for now.
    """
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        addresses = await _look_up(host, port, timeout_s)
    if not addresses:
        raise TargetRefused(host, UNRESOLVED)
    if not allow_private and not all(_is_public(address) for address in addresses):
        raise TargetRefused(host, PRIVATE)
    return list(dict.fromkeys(addresses))


async def _look_up(host: str, port: int, timeout_s: float) -> list[str]:
    try:
        return await asyncio.wait_for(resolve(host, port), timeout_s)
    except TimeoutError:
        raise ResolveFailed(host, f"no answer within {timeout_s:g} s") from None
    except UnicodeError:  # not a name IDNA can encode
        raise TargetRefused(host, UNRESOLVED) from None
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            raise TargetRefused(host, UNRESOLVED) from None
        raise ResolveFailed(host, exc.strerror or "resolver error") from None
    except OSError as exc:
        raise ResolveFailed(host, exc.strerror or type(exc).__name__) from None


def _is_public(address: str) -> bool:
    try:
        return is_public_ip(address)
    except ValueError:
        return False


async def vet_url(url: str, *, allow_private: bool = False) -> list[str]:
    """``vetted_addresses`` for the host of ``url`` as httpx will connect to it (IDNA-encoded, default port)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise TargetRefused("the URL", "is not a valid URL") from None
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise TargetRefused("the URL", "has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return await vetted_addresses(host, port, allow_private=allow_private)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, connecting only to the addresses ``vetted_addresses`` gave for the host.

    The one transport for every URL a user supplies. ``TargetRefused`` and ``ResolveFailed``
    come out of ``client.send`` as they are (delivery errors: a refusal is permanent, which no
    httpx error is). No proxy is ever used: a proxy would look the name up again.
    ``network_backend`` (default: httpcore's anyio one) is what finally opens the socket.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        limits: httpx.Limits | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        # httpx 0.28 takes no network backend: make its pool again, as httpx does, with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(allow_private, network_backend or httpcore.AnyIOBackend()),
        )


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens each connection to a vetted address of the host httpcore asks for (TLS keeps the name)."""

    def __init__(self, allow_private: bool, inner: httpcore.AsyncNetworkBackend) -> None:
        self._allow_private = allow_private
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        lookup_s = min(timeout, RESOLVE_TIMEOUT_S) if timeout else RESOLVE_TIMEOUT_S
        addresses = await vetted_addresses(host, port, allow_private=self._allow_private, timeout_s=lookup_s)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # vetted_addresses never answers an empty list
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
