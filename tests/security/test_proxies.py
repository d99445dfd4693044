"""Behind a trusted proxy the limits count per forwarded client; from any other peer the forwarding headers
are ignored. IPv6 clients share a bucket per /64. Checked in-process and through both real servers."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from broadcaster.ratelimit import client_bucket
from broadcaster.runtime import Runtime
from sandbox.serve import free_port
from status_page.app import create_app
from status_page.client_address import forwarded_chain, parse_address, real_client
from tests.conftest import REDIS_URL, make_settings
from tests.security.helpers import CSRF

TRUSTED = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]
PROXY = "10.0.0.2"


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        (PROXY, [("x-forwarded-for", "203.0.113.5")], "203.0.113.5"),
        (PROXY, [("x-forwarded-for", "1.1.1.1, 203.0.113.5")], "203.0.113.5"),  # the left part is the client's own
        (PROXY, [("x-forwarded-for", "203.0.113.5, 10.1.1.1")], "203.0.113.5"),  # two proxies of ours
        (PROXY, [("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.5:4711")], "203.0.113.5"),
        (PROXY, [("forwarded", 'for=1.1.1.1, for="[2001:db8::7]:4711";proto=https')], "2001:db8::7"),
        (PROXY, [("forwarded", "for=1.1.1.1"), ("x-forwarded-for", "203.0.113.5")], "203.0.113.5"),  # XFF wins
        (PROXY, [("x-forwarded-for", "1.1.1.1, unknown")], PROXY),  # no address: no stepping past it
        (PROXY, [("x-forwarded-for", "::ffff:203.0.113.5")], "203.0.113.5"),
        (PROXY, [], PROXY),
        ("198.51.100.9", [("x-forwarded-for", "203.0.113.5")], "198.51.100.9"),  # an untrusted peer: ignored
        ("fd00::1", [("x-forwarded-for", "2001:db8::9")], "2001:db8::9"),
    ],
)
def test_the_client_is_the_right_most_untrusted_address(peer: str, headers: list[tuple[str, str]], client: str) -> None:
    chain = forwarded_chain([(k.encode(), v.encode()) for k, v in headers])
    found = real_client(parse_address(peer) or ip_address("0.0.0.0"), chain, TRUSTED)
    assert found == ip_address(client)


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    assert client_bucket("2001:db8:1:2::1") == client_bucket("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket("203.0.113.5") == client_bucket("::ffff:203.0.113.5") == "203.0.113.5"
    assert len(client_bucket("x" * 10_000)) < 40  # not an address (a test client's name): digested


@pytest.fixture
async def proxied(database_url: str, clean_database: None) -> AsyncIterator[Any]:
    settings = make_settings(
        database_url,
        trusted_proxies="10.0.0.0/8, fd00::/8",
        login_per_ip=2,
        subscribe_email_per_ip=1,
        smtp_host="127.0.0.1",
        smtp_port=2525,
        email_from="status@example.com",
    )
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    try:
        async with LifespanManager(app):
            yield app
    finally:
        await (await runtime.queue.pool()).delete(settings.queue_name)
        await runtime.aclose()


def from_peer(app: Any, peer: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(peer, 40000)), base_url="http://status.test"
    )


async def bad_login(client: httpx.AsyncClient, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for}
    token = CSRF.search((await client.get("/login", headers=headers)).text)
    assert token
    response = await client.post(
        "/login",
        headers=headers,
        data={"username": f"u{uuid.uuid4().hex[:6]}", "password": "wrong", "csrf_token": token.group(1)},
    )
    return response.status_code


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(proxied: Any) -> None:
    async with from_peer(proxied, PROXY) as proxy:
        assert [await bad_login(proxy, "203.0.113.1") for _ in range(3)] == [401, 401, 429]
        assert [await bad_login(proxy, "203.0.113.2") for _ in range(3)] == [401, 401, 429]
        assert await bad_login(proxy, "2001:db8:1:2::1") == 401
        assert await bad_login(proxy, "2001:db8:1:2::2") == 401
        assert await bad_login(proxy, "2001:db8:1:2::3") == 429  # the same /64
        assert await bad_login(proxy, "2001:db8:1:3::1") == 401  # the next /64
    async with from_peer(proxied, PROXY) as proxy:  # sign-up limits too
        first = await proxy.post("/subscribe", json={"email": "a@example.org"}, headers={"X-Forwarded-For": "1.2.3.4"})
        other = await proxy.post("/subscribe", json={"email": "b@example.org"}, headers={"X-Forwarded-For": "1.2.3.5"})
        again = await proxy.post("/subscribe", json={"email": "c@example.org"}, headers={"X-Forwarded-For": "1.2.3.4"})
        assert (first.status_code, other.status_code, again.status_code) == (202, 202, 429)


async def test_from_an_untrusted_peer_the_header_is_ignored(proxied: Any) -> None:
    async with from_peer(proxied, "198.51.100.9") as stranger:
        codes = [await bad_login(stranger, f"203.0.113.{n}") for n in range(1, 4)]
        assert codes == [401, 401, 429]  # one bucket: the peer's


# --- through the real servers ---------------------------------------------------------------------


@pytest.fixture
def serve(database_url: str, clean_database: None, tmp_path: Path) -> Iterator[Any]:
    """``start(server, trusted)``: ``broadcaster serve`` in a subprocess; its base URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(server: str, trusted: str | None) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
        env.update(
            BROADCASTER_DATABASE_URL=database_url,
            BROADCASTER_REDIS_URL=REDIS_URL,
            BROADCASTER_QUEUE_NAME=f"broadcaster:test:{uuid.uuid4().hex[:12]}",
            BROADCASTER_SECRET_KEY="k" * 48,
            BROADCASTER_PUBLIC_URL=f"http://127.0.0.1:{port}",
            BROADCASTER_LOGIN_PER_IP="1",
        )
        if trusted is not None:
            env["BROADCASTER_TRUSTED_PROXIES"] = trusted
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "broadcaster.cli", "serve", "--server", server, "--port", str(port)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


async def wait_up(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(300):
            try:
                if (await client.get("/login")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{base_url} did not start")


async def real_bad_login(base_url: str, forwarded_for: str) -> int:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-Forwarded-For": forwarded_for}) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        response = await client.post(
            "/login", data={"username": "nobody", "password": "wrong", "csrf_token": token.group(1)}
        )
        return response.status_code


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
async def test_both_servers_follow_the_one_rule(serve: Any, server: str) -> None:
    trusted, untrusted = serve(server, "127.0.0.1/32"), serve(server, None)
    await wait_up(trusted)
    await wait_up(untrusted)
    # From loopback, trusted: two forwarded clients, two buckets (one attempt each per window).
    assert [await real_bad_login(trusted, ip) for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.1")] == [
        401,
        401,
        429,
    ]
    # Not trusted (uvicorn's own proxy handling would have believed loopback): one bucket.
    assert [await real_bad_login(untrusted, ip) for ip in ("203.0.113.1", "203.0.113.2")] == [401, 429]
