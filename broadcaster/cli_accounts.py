"""``broadcaster create-token | revoke-token | list-tokens | create-user``: accounts from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
from typing import Any

from broadcaster.actors import Actor
from broadcaster.commands import command
from broadcaster.config import Settings


def _token_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--role",
        default="admin",
        choices=["admin", "commander", "agent", "viewer"],
        help="viewer reads; commander posts, previews and retries; admin also manages "
        "subscribers, tokens and the audit log",
    )
    parser.add_argument("--expires-in-days", type=int, dest="expires_in_days", metavar="DAYS")


@command("create-token", "create an API token (printed once, on the last line)", _token_args)
def create_token(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.domain import audit
    from broadcaster.domain.tokens import create_token as store_token

    async def run() -> str:
        from broadcaster.db import make_engine

        engine = make_engine(settings.database_url)
        try:
            async with engine.begin() as conn:
                secret = await store_token(conn, args.name, args.role, args.expires_in_days)
                await audit.record(
                    conn,
                    str(Actor.cli()),
                    "token.create",
                    target=args.name,
                    role=args.role,
                    expires_in_days=args.expires_in_days,
                )
                return secret
        finally:
            await engine.dispose()

    token = asyncio.run(run())
    print(f"token {args.name!r} ({args.role}) created; it is shown only now:")
    print(token)
    return 0


def _revoke_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="every active token of this name is revoked")


@command("revoke-token", "revoke API tokens by name (their next request gets 401)", _revoke_args)
def revoke_token(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.db import make_engine
    from broadcaster.domain import audit
    from broadcaster.domain.tokens import revoke_token as revoke

    async def run() -> list[str]:
        engine = make_engine(settings.database_url)
        try:
            async with engine.begin() as conn:
                ids = await revoke(conn, name=args.name)
                await audit.record(conn, str(Actor.cli()), "token.revoke", target=args.name, ids=ids)
                return ids
        finally:
            await engine.dispose()

    print(f"revoked {len(asyncio.run(run()))} token(s) named {args.name!r}")
    return 0


@command("list-tokens", "list API tokens (never their secrets)")
def list_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.db import make_engine
    from broadcaster.domain.tokens import list_tokens as rows_of

    async def run() -> list[dict[str, Any]]:
        engine = make_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                return await rows_of(conn)
        finally:
            await engine.dispose()

    print("id\tname\trole\tcreated\tlast used\texpires\trevoked")
    for row in asyncio.run(run()):
        print(
            "\t".join(
                str(row[k] or "-")
                for k in ("id", "name", "role", "created_at", "last_used_at", "expires_at", "revoked_at")
            )
        )
    return 0


def _user_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--username", required=True)
    parser.add_argument("--role", default="commander", choices=["admin", "commander", "agent", "viewer"])
    parser.add_argument("--email")
    parser.add_argument("--phone")
    parser.add_argument("--password", help="read from BROADCASTER_NEW_PASSWORD or asked when absent")


@command("create-user", "create a console user", _user_args)
def create_user(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.domain import audit
    from broadcaster.domain.users import create_user as store_user

    password = args.password or os.environ.get("BROADCASTER_NEW_PASSWORD") or getpass.getpass("password: ")

    async def run() -> None:
        from broadcaster.db import make_engine

        engine = make_engine(settings.database_url)
        try:
            async with engine.begin() as conn:
                await store_user(conn, args.username, password, args.role, email=args.email, phone=args.phone)
                await audit.record(conn, str(Actor.cli()), "user.create", target=args.username, role=args.role)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(f"user {args.username!r} ({args.role}) created")
    return 0
