"""Who acted: every write names its actor, the same way in the audit log and on updates."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    USER = "user"  # a console login
    TOKEN = "token"  # an API token
    CLI = "cli"  # someone at the terminal, by OS user
    SYSTEM = "system"  # a job acting on its own (reminders, demo seed, maintenance)
    CONTACT = "contact"  # an incident contact following an acknowledgement link


@dataclass(frozen=True, slots=True)
class Actor:
    """``str(actor)`` is what the audit log shows (``user:alice``); ``scope`` keys idempotency."""

    kind: ActorKind
    name: str
    id: str | None = None

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"

    @property
    def scope(self) -> str:
        """Stable per actor even across renames: idempotency keys are remembered per scope."""
        return f"{self.kind.value}:{self.id or self.name}"

    @classmethod
    def user(cls, name: str, user_id: str | None = None) -> Actor:
        return cls(ActorKind.USER, name, user_id)

    @classmethod
    def token(cls, name: str, token_id: str | None = None) -> Actor:
        return cls(ActorKind.TOKEN, name, token_id)

    @classmethod
    def cli(cls) -> Actor:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers): still say it came from the terminal
            name = "unknown"
        return cls(ActorKind.CLI, name)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(ActorKind.SYSTEM, job)
