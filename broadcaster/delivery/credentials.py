"""Rotating provider credentials as a channel sees them: one named secret, read and renewed.

A provider that hands out short-lived tokens (X's OAuth 2.0 user tokens, a Bluesky session)
gives one account's credential to every worker. A channel keeps it in the ``CredentialStore``
lent by ``ChannelContext.credentials``: ``load`` reads the current one, ``rotate`` renews it
so that two workers never race a rotation. Under the store's lock ``rotate`` reads the
credential again and hands it to the channel's ``renew``, which returns ``None`` when it is
good after all (another worker renewed it meanwhile) or the new credential to store.

A ``Runtime`` lends the durable store shared by every worker
(``broadcaster.delivery.credential_store``); elsewhere (a channel built by hand, a unit test)
a channel gets ``LocalCredentials``, this process's memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Credential:
    """One stored credential: its fields (secret, never in a repr), when its access part expires, its version."""

    value: Mapping[str, Any] = field(repr=False)
    expires_at: datetime | None = None
    version: int = 0  # set by the store: 1 for the first, +1 on each rotation


Renew = Callable[[Credential | None], Awaitable[Credential | None]]
"""Given the credential as stored now (``None``: none yet), the one to store, or ``None`` to keep it."""


@runtime_checkable
class CredentialStore(Protocol):
    """Named credentials shared by the workers that use one provider account."""

    async def load(self, name: str) -> Credential | None:
        """The credential stored as ``name``, or ``None``."""
        ...

    async def rotate(self, name: str, renew: Renew) -> Credential | None:
        """Under ``name``'s lock: ``renew(stored)``, stored when it returns one; the credential stored after."""
        ...


class LocalCredentials:
    """A ``CredentialStore`` in this process's memory, for a channel outside a ``Runtime``."""

    def __init__(self) -> None:
        self._stored: dict[str, Credential] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def load(self, name: str) -> Credential | None:
        return self._stored.get(name)

    async def rotate(self, name: str, renew: Renew) -> Credential | None:
        async with self._locks.setdefault(name, asyncio.Lock()):
            current = self._stored.get(name)
            renewed = await renew(current)
            if renewed is None:
                return current
            stored = replace(renewed, version=(current.version if current else 0) + 1)
            self._stored[name] = stored
            return stored
