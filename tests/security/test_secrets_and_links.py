"""Tokens hashed and compared in constant time; signed links expire and serve one purpose only."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from broadcaster import security
from broadcaster.config import Settings
from broadcaster.db import api_tokens
from broadcaster.domain import tokens
from broadcaster.jobs.confirmations import CONFIRM_PURPOSE
from broadcaster.runtime import Runtime
from broadcaster.security import LinkSigner

PURPOSES = (CONFIRM_PURPOSE, "unsubscribe", "manage")


async def test_tokens_table_holds_only_hashes(client: httpx.AsyncClient, runtime: Runtime, token: str) -> None:
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(api_tokens))).mappings().all()
    assert len(rows) == 1
    stored = " ".join(str(v) for v in rows[0].values())
    assert token not in stored and token[3:] not in stored
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    ok = await client.get("/api/v1/components", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    # The hash itself is no credential.
    bad = await client.get("/api/v1/components", headers={"Authorization": f"Bearer {rows[0]['token_hash']}"})
    assert bad.status_code == 401


async def test_token_check_is_constant_time(runtime: Runtime, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = security.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    async with runtime.engine.connect() as conn:
        assert await tokens.authenticate(conn, token) is not None
        assert await tokens.authenticate(conn, token + "x") is None
    assert calls, "tokens must be compared with hmac.compare_digest"


@pytest.mark.parametrize("made_for", PURPOSES)
def test_links_serve_one_purpose(made_for: str) -> None:
    signer = LinkSigner("k")
    signed = signer.sign(made_for, "sub123")
    for purpose in PURPOSES:
        expected = "sub123" if purpose == made_for else None
        assert signer.verify(purpose, signed, 3600) == expected, (made_for, purpose)
    assert LinkSigner("other-key").verify(made_for, signed, 3600) is None


def test_expired_links_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = LinkSigner("k")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 7200)
    old = signer.sign("unsubscribe", "sub123")
    monkeypatch.undo()
    assert signer.verify("unsubscribe", old, 3600) is None
    assert signer.verify("unsubscribe", old, 10_800) == "sub123"


async def test_links_are_not_interchangeable_over_http(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broadcaster.domain.subscribers import upsert_subscriber
    from broadcaster.schemas import SubscriberIn

    rt: Runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    async with rt.engine.begin() as conn:
        row, _ = await upsert_subscriber(
            conn, SubscriberIn(channel="email", address="a@example.org"), allow_private_webhooks=True
        )
    signer = LinkSigner(settings.secret_key.get_secret_value())
    json_accept = {"accept": "application/json"}
    unsubscribe_token = signer.sign("unsubscribe", row["id"])
    confirm = await client.get("/subscriptions/confirm", params={"token": unsubscribe_token}, headers=json_accept)
    assert confirm.status_code == 400, "an unsubscribe token confirmed a subscription"
    confirm_token = signer.sign(CONFIRM_PURPOSE, row["id"])
    leave = await client.post("/unsubscribe", params={"token": confirm_token}, headers=json_accept)
    assert leave.status_code == 400, "a confirmation token unsubscribed someone"
    manage = await client.get("/subscriptions/manage", params={"token": confirm_token}, headers=json_accept)
    assert manage.status_code == 400
    monkeypatch.setattr(
        TimestampSigner, "get_timestamp", lambda self: int(time.time()) - settings.confirm_link_max_age_s - 60
    )
    expired = signer.sign(CONFIRM_PURPOSE, row["id"])
    monkeypatch.undo()
    late = await client.get("/subscriptions/confirm", params={"token": expired}, headers=json_accept)
    assert late.status_code == 400, "an expired confirmation link worked"
    fresh = await client.get("/subscriptions/confirm", params={"token": confirm_token}, headers=json_accept)
    assert fresh.status_code == 200
