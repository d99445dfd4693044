"""The durable ``CredentialStore``: table ``channel_credentials``, encrypted, rotated under a Redis lock.

Every worker reads the same row, so a refresh token rotated by one worker is the one the
others use next. The value is JSON encrypted with Fernet under a key derived (HKDF-SHA256,
labelled for this purpose) from ``BROADCASTER_SECRET_KEY``: the database alone never holds a
token in clear. A credential that does not decrypt (the secret key changed) reads as absent,
so the channel starts afresh from its settings.

A rotation holds a Redis lock (``SET NX PX``) named after the credential: a second worker
that finds it held waits, then reads again and (usually) finds the renewed credential. The
write is also a compare-and-swap on ``version``: were the lock to expire in the middle of a
slow renewal, the later writer loses and takes what the first stored.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import redis.asyncio as aioredis
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.exceptions import LockNotOwnedError, RedisError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcaster.config import Settings
from broadcaster.db import channel_credentials
from broadcaster.delivery.credentials import Credential, Renew
from broadcaster.errors import RetryableError

log = logging.getLogger(__name__)

_KEY_PURPOSE = b"broadcaster channel credentials v1"


def fernet_for(secret_key: str) -> Fernet:
    """The Fernet that seals credentials: a key derived from the secret key for this purpose only."""
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_KEY_PURPOSE).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class SharedCredentials:
    """Credentials every worker shares (``broadcaster.delivery.credentials.CredentialStore``)."""

    def __init__(
        self,
        engine: AsyncEngine,
        redis_url: str,
        secret_key: str,
        *,
        lock_prefix: str = "broadcaster",
        lock_ttl_s: float = 35.0,
        lock_wait_s: float = 35.0,
    ) -> None:
        self._engine = engine
        self._redis_url = redis_url
        self._fernet = fernet_for(secret_key)
        self._lock_prefix = lock_prefix
        self.lock_ttl_s = lock_ttl_s  # a crashed holder's lock lapses after this
        self.lock_wait_s = lock_wait_s

    @classmethod
    def from_settings(cls, settings: Settings, engine: AsyncEngine) -> SharedCredentials:
        """The store of a deployment: its database, its Redis; a renewal may take two HTTP timeouts."""
        renewal_s = 2 * settings.http_timeout_s + 5
        return cls(
            engine,
            settings.redis_url,
            settings.secret_key.get_secret_value(),
            lock_prefix=settings.queue_name,
            lock_ttl_s=renewal_s,
            lock_wait_s=renewal_s,
        )

    async def load(self, name: str) -> Credential | None:
        return (await self._read(name))[1]

    async def rotate(self, name: str, renew: Renew) -> Credential | None:
        async with self._locked(name):
            version, current = await self._read(name)
            renewed = await renew(current)
            if renewed is None:
                return current
            return await self._write(name, version, renewed)

    @contextlib.asynccontextmanager
    async def _locked(self, name: str) -> AsyncIterator[None]:
        client: aioredis.Redis = aioredis.from_url(  # type: ignore[no-untyped-call]
            self._redis_url, socket_connect_timeout=2, socket_timeout=5
        )
        try:
            lock = client.lock(f"{self._lock_prefix}:credential:{name}", timeout=self.lock_ttl_s)
            try:
                acquired = await lock.acquire(blocking_timeout=self.lock_wait_s)
            except RedisError as exc:
                raise RetryableError(f"cannot lock the {name} credential: Redis unavailable ({exc!r})") from exc
            if not acquired:
                raise RetryableError(f"the {name} credential is being renewed by another worker; try again")
            try:
                yield
            finally:
                try:
                    await lock.release()
                except LockNotOwnedError:
                    log.warning("the lock on the %s credential lapsed during its renewal", name)
                except RedisError:
                    log.warning("could not release the lock on the %s credential; it lapses by itself", name)
        finally:
            await client.aclose()

    async def _read(self, name: str) -> tuple[int | None, Credential | None]:
        """The stored row's version (``None``: no row) and its credential (``None`` when it does not decrypt)."""
        table = channel_credentials
        query = select(table.c.ciphertext, table.c.version, table.c.expires_at).where(table.c.name == name)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None, None
        try:
            value = json.loads(self._fernet.decrypt(row.ciphertext.encode()))
        except (InvalidToken, ValueError):
            log.warning("the stored %s credential does not decrypt with this secret key: starting afresh", name)
            return row.version, None
        return row.version, Credential(value, row.expires_at, row.version)

    async def _write(self, name: str, version: int | None, renewed: Credential) -> Credential | None:
        """Store ``renewed`` if the row is still at ``version``; else keep (and return) what another worker stored."""
        table = channel_credentials
        values = {
            "ciphertext": self._fernet.encrypt(json.dumps(dict(renewed.value)).encode()).decode(),
            "expires_at": renewed.expires_at,
            "updated_at": datetime.now(UTC),
        }
        new_version = (version or 0) + 1
        try:
            async with self._engine.begin() as conn:
                if version is None:
                    await conn.execute(insert(table).values(name=name, version=new_version, **values))
                    written = True
                else:
                    swap = update(table).where(table.c.name == name, table.c.version == version)
                    written = (await conn.execute(swap.values(version=new_version, **values))).rowcount == 1
        except IntegrityError:  # another worker inserted the first one
            written = False
        if not written:
            log.warning("another worker renewed the %s credential first: keeping theirs", name)
            return await self.load(name)
        log.debug("renewed the %s credential (version %d)", name, new_version)
        return Credential(renewed.value, renewed.expires_at, new_version)
