"""broadcaster/ssrf.py: the one policy for URLs someone else chose (webhook receivers, chat webhooks)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from broadcaster import ssrf
from broadcaster.ssrf import (
    PRIVATE,
    UNRESOLVED,
    PinnedTransport,
    ResolveFailed,
    TargetRefused,
    is_public_ip,
    refuse_private_literal,
    vet_url,
    vetted_addresses,
)
from tests.support.dns import NXDOMAIN, flipping, use_resolver

REFUSED = PRIVATE
PUBLIC_V4, PUBLIC_V6 = "93.184.216.34", "2606:2800:220:1::1"

NOT_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "192.168.0.1",
    "172.31.255.255",
    "169.254.169.254",
    "0.0.0.0",
    "255.255.255.255",
    "100.64.0.1",
    "100.127.255.254",  # shared address space (CGNAT)
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",  # documentation, benchmarking
    "224.0.0.1",
    "233.252.0.1",  # multicast (233.252/24 counts as "global" to ipaddress)
    "::",
    "::1",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",  # IPv4-mapped
    "2002:7f00:1::",
    "2002:a00:1::",
    "2002:6440:1::",  # 6to4 around 127.0.0.1, 10.0.0.1, 100.64.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "64:ff9b::7f00:1",
    "64:ff9b:1::5db8:d822",  # NAT64 around 127.0.0.1; the local-use NAT64 prefix
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    f"{PUBLIC_V6}%eth0",  # any zone id
]
PUBLIC = [PUBLIC_V4, "1.1.1.1", PUBLIC_V6, "2002:5db8:d822::", "64:ff9b::5db8:d822", "::ffff:93.184.216.34"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_not_public(address: str) -> None:
    assert not is_public_ip(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public(address: str) -> None:
    assert is_public_ip(address)


LITERAL_CASES: list[tuple[str, str | None]] = [
    # (URL, part of the refusal or None)
    ("https://127.0.0.1/hook", f"127.0.0.1 {REFUSED}"),
    ("https://[::1]:8443/hook", f"::1 {REFUSED}"),
    ("https://[::ffff:10.0.0.1]/hook", REFUSED),
    ("https://169.254.169.254/latest/meta-data", REFUSED),
    ("https://0.0.0.0/hook", REFUSED),
    ("https://100.64.0.1/hook", REFUSED),
    ("https://[2002:7f00:1::]/hook", REFUSED),
    ("http://[fe80::1%25eth0]/", REFUSED),
    ("https:///hook", "the URL has no host"),
    ("https://93.184.216.34/hook", None),
    ("https://example.com/hook", None),  # a name: left to the resolving check
]


@pytest.mark.parametrize(("url", "refusal"), LITERAL_CASES)
def test_refuse_private_literal(url: str, refusal: str | None) -> None:
    reason = refuse_private_literal(url)
    assert reason is None if refusal is None else refusal in str(reason)


@pytest.mark.parametrize(("url", "refusal"), LITERAL_CASES)
async def test_vet_url_agrees_on_addresses(url: str, refusal: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    use_resolver(monkeypatch, {"example.com": [PUBLIC_V4]})
    if refusal is None:
        assert await vet_url(url)
    else:
        with pytest.raises(TargetRefused, match=re.escape(refusal)):
            await vet_url(url)


REFUSED_ANSWERS: list[tuple[Any, str]] = [
    ([PUBLIC_V4, "10.1.2.3"], REFUSED),  # every address must be public, not just the first
    (["100.64.0.1"], REFUSED),
    (["2002:7f00:1::"], REFUSED),
    (["fe80::1%eth0"], REFUSED),
    ([], UNRESOLVED),
    (NXDOMAIN, UNRESOLVED),  # fail closed
    (socket.gaierror(socket.EAI_NODATA, "No address associated with hostname"), UNRESOLVED),
    (UnicodeError("label empty or too long"), UNRESOLVED),
]


@pytest.mark.parametrize(("answer", "why"), REFUSED_ANSWERS)
async def test_a_name_is_refused_for_what_it_resolves_to(
    answer: Any, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_resolver(monkeypatch, {"hooks.example": answer})
    with pytest.raises(TargetRefused) as refused:
        await vet_url("https://hooks.example/hook/s3cret?token=abc")
    assert str(refused.value) == f"refused: hooks.example {why}"  # never the path or the query
    assert isinstance(refused.value, ssrf.PermanentError)


async def test_a_public_answer_is_the_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = use_resolver(monkeypatch, {"hooks.example": [PUBLIC_V4, PUBLIC_V6, PUBLIC_V4]})
    assert await vet_url("https://hooks.example/hook") == [PUBLIC_V4, PUBLIC_V6]
    assert resolver.calls == ["hooks.example"]


async def test_allow_private_still_resolves_and_refuses_what_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    use_resolver(monkeypatch, {"dev.example": ["127.0.0.1"]})
    assert await vet_url("http://dev.example/hook", allow_private=True) == ["127.0.0.1"]
    with pytest.raises(TargetRefused, match=UNRESOLVED):
        await vet_url("http://nowhere.example/hook", allow_private=True)


async def test_the_host_is_looked_up_as_httpx_connects_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = use_resolver(monkeypatch, {"xn--fa-hia.example": [PUBLIC_V4]})
    assert await vet_url("https://faß.example/hook")  # IDNA 2008, as httpx encodes it
    assert resolver.calls == ["xn--fa-hia.example"]


async def test_localhost_is_refused() -> None:
    with pytest.raises(TargetRefused, match=f"refused: localhost {REFUSED}"):
        await vet_url("https://localhost/hook")  # the system resolver


async def test_resolver_trouble_is_retryable_and_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    use_resolver(monkeypatch, {"flaky.example": socket.gaierror(socket.EAI_AGAIN, "Temporary failure")})
    with pytest.raises(ResolveFailed, match=re.escape("flaky.example did not resolve: Temporary failure")):
        await vet_url("https://flaky.example/hook")


async def test_a_slow_resolver_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return [PUBLIC_V4]

    monkeypatch.setattr(ssrf, "resolve", slow)
    started = time.monotonic()
    with pytest.raises(ResolveFailed, match=re.escape("no answer within 0.2 s")):
        await vetted_addresses("slow.example", timeout_s=0.2)
    assert time.monotonic() - started < 1


async def test_the_system_lookup_does_not_block_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    def blocking_getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        time.sleep(0.5)  # a slow resolver, in the executor thread
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port))]

    monkeypatch.setattr(socket, "getaddrinfo", blocking_getaddrinfo)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        assert await vet_url("https://slow.example/hook") == [PUBLIC_V4]
    finally:
        task.cancel()
    assert ticks > 20, f"the loop ran only {ticks} ticks in 0.5 s"


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records every address a connection is opened to. Loopback goes to the real network (a
    receiver there records whether it was hit); any other address fails at once, as an
    unreachable host would, so no packet leaves the machine."""

    def __init__(self) -> None:
        self.connects: list[str] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise httpcore.ConnectError(f"{host} unreachable (test network)")
        return await self._real.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


@pytest.fixture
async def loopback_listener() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A loopback TCP server that records every connection made to it (and answers HTTP 204)."""
    hits: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], hits


async def test_a_flipping_answer_never_reaches_loopback(
    monkeypatch: pytest.MonkeyPatch, loopback_listener: tuple[int, list[bytes]]
) -> None:
    """Rebinding: the answer flips between public and loopback on every lookup, yet no request lands on loopback."""
    port, hits = loopback_listener
    resolver = use_resolver(monkeypatch, {"flip.example": flipping(PUBLIC_V4, "127.0.0.1")})
    backend = RecordingBackend()
    outcomes: list[str] = []
    async with httpx.AsyncClient(transport=PinnedTransport(network_backend=backend), timeout=1) as client:
        for _ in range(6):
            try:
                await client.post(f"http://flip.example:{port}/hook?token=s3cret", content=b"{}")
            except TargetRefused as exc:
                outcomes.append(str(exc))
            except httpx.ConnectError:
                outcomes.append("connect to the public address failed")
    assert hits == [], "a request reached the loopback receiver"
    assert backend.connects == [PUBLIC_V4] * 3  # only ever the vetted answer
    assert outcomes == ["connect to the public address failed", f"refused: flip.example {REFUSED}"] * 3
    assert resolver.calls == ["flip.example"] * 6  # one lookup per connection, none behind our back


async def test_allow_private_pins_the_one_answer(
    monkeypatch: pytest.MonkeyPatch, loopback_listener: tuple[int, list[bytes]]
) -> None:
    port, hits = loopback_listener
    resolver = use_resolver(monkeypatch, {"dev.example": [PUBLIC_V4, "127.0.0.1"]})
    backend = RecordingBackend()
    async with httpx.AsyncClient(transport=PinnedTransport(allow_private=True, network_backend=backend)) as client:
        response = await client.post(f"http://dev.example:{port}/hook", content=b"{}")
    assert response.status_code == 204
    assert backend.connects == [PUBLIC_V4, "127.0.0.1"]  # the next vetted address when one fails
    assert resolver.calls == ["dev.example"]
    assert f"host: dev.example:{port}".encode() in hits[0].lower()  # the name, not the address


async def test_tls_keeps_the_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Connected to the pinned address, TLS still sends the name (SNI) and checks the certificate against it."""
    cert_file, key_file = _self_signed("hooks.example", tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # httpx's context trusts it
    server_names: list[str | None] = []
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert_file, key_file)
    server_ssl.sni_callback = lambda sock, name, ctx: server_names.append(name)  # type: ignore[assignment,misc,return-value]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ssl)
    port = server.sockets[0].getsockname()[1]
    use_resolver(monkeypatch, {"hooks.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    async with server, httpx.AsyncClient(transport=PinnedTransport(allow_private=True)) as client:
        response = await client.get(f"https://hooks.example:{port}/")
        assert response.text == "ok"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://other.example:{port}/")  # same address, a name the certificate lacks
    assert server_names[:2] == ["hooks.example", "other.example"]


def _self_signed(name: str, directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
