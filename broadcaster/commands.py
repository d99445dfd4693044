"""The registry of ``broadcaster`` subcommands: ``@command(name, help, arguments)`` adds one.

``broadcaster.cli`` builds the parser from ``COMMANDS``; modules with commands of their own
(``broadcaster.cli_accounts``) register them here, so none of them imports the CLI itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from broadcaster.config import Settings

Command = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, tuple[str, Command, Callable[[argparse.ArgumentParser], None]]] = {}


def command(
    name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None
) -> Callable[[Command], Command]:
    """Register ``fn`` as ``broadcaster NAME``; ``arguments`` adds its options to the parser."""

    def register(fn: Command) -> Command:
        COMMANDS[name] = (help_text, fn, arguments)
        return fn

    return register
