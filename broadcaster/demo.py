"""``broadcaster demo``: a small, realistic page to look at and to try the console on; and the
random secret key ``broadcaster up`` keeps, so a fresh clone runs without setting one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, make_url, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.actors import Actor
from broadcaster.config import Settings
from broadcaster.crisis.playbook_yaml import load_sample
from broadcaster.db import components, users
from broadcaster.domain.components import create_component
from broadcaster.domain.incident_templates import seed_templates
from broadcaster.domain.subscribers import upsert_subscriber
from broadcaster.domain.tokens import create_token
from broadcaster.domain.users import create_user
from broadcaster.post_requests import request_from_body
from broadcaster.posting import post
from broadcaster.runtime import Runtime
from broadcaster.schemas import ComponentIn, SubscriberIn
from broadcaster.security import DEFAULT_SECRET_KEY, MIN_SECRET_KEY_BYTES

SECRET_FILE_NAME = ".broadcaster-secret"

DEMO_COMPONENTS = [
    ("Website", None, "Marketing site and documentation"),
    ("API", "Platform", "Public REST API"),
    ("Dashboard", "Platform", "Customer dashboard"),
    ("Payments", "Platform", "Card and invoice payments"),
    ("Email delivery", "Notifications", "Transactional email"),
    ("SMS delivery", "Notifications", "Text messages"),
    ("Contact centre", None, "Phone and chat support"),
]


DEMO_USERS = (("commander", "commander"), ("agent", "agent"))

# With the sandbox, subscribers whose mail, texts, webhook calls and chat messages land in its
# outbox (the chat URLs are sandbox.config's *_DEMO_PATH). Sam follows Payments only, so the
# demo incident (API, Dashboard) shows the filter at work.
SANDBOX_SUBSCRIBERS = (
    ("email", "dana@example.com", ()),
    ("email", "sam@example.com", ("Payments",)),
    ("sms", "+14155550100", ("API", "Dashboard")),
    ("webhook", "{sandbox_url}/webhook/demo", ()),
    ("slack", "{sandbox_url}/slack/services/T0SANDBOX/B0DEMO/sandbox-demo-secret", ()),
    ("teams", "{sandbox_url}/teams/workflows/demo/triggers/manual/paths/invoke?api-version=2016-06-01&sig=sandbox", ()),
    ("discord", "{sandbox_url}/discord/api/webhooks/1300000000000000002/sandbox-demo-token", ()),
    ("google_chat", "{sandbox_url}/google-chat/v1/spaces/DEMO/messages?key=sandbox-key&token=sandbox-token", ()),
)


async def _sandbox_subscribers(conn: AsyncConnection, settings: Settings, ids: dict[str, str]) -> int:
    """The demo's confirmed subscribers at sandbox addresses (only when the sandbox is on)."""
    if not settings.sandbox_url:
        return 0
    for channel, address, names in SANDBOX_SUBSCRIBERS:
        data = SubscriberIn(
            channel=channel,
            address=address.format(sandbox_url=settings.sandbox_url),
            components=[ids[name] for name in names],
            confirmed=True,
        )
        await upsert_subscriber(conn, data, allow_private_webhooks=True)
    return len(SANDBOX_SUBSCRIBERS)


async def _demo_users(conn: AsyncConnection) -> list[tuple[str, str, str]]:
    """A commander (console) and an agent (desk) with random passwords, when there are no users yet."""
    if int((await conn.execute(select(func.count()).select_from(users))).scalar() or 0):
        return []
    created = []
    for username, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        await create_user(conn, username, password, role)
        created.append((username, role, password))
    return created


async def seed(settings: Settings) -> list[str]:
    """Seed the demo once (a second run only prints a fresh token); returns lines to print."""
    rt = Runtime.build(settings)
    lines: list[str] = []
    try:
        async with rt.engine.begin() as conn:
            existing = int((await conn.execute(select(func.count()).select_from(components))).scalar() or 0)
            ids: dict[str, str] = {}
            if not existing:
                for name, group, description in DEMO_COMPONENTS:
                    row = await create_component(conn, ComponentIn(name=name, group=group, description=description))
                    ids[name] = row["id"]
            subscribed = await _sandbox_subscribers(conn, settings, ids) if ids else 0
            token = await create_token(conn, "demo")
            logins = await _demo_users(conn)
            templates_added = await seed_templates(conn)
            playbooks_loaded = await load_sample(conn) if ids else None
        if ids:
            result = await post(
                rt,
                request_from_body(
                    {
                        "title": "Elevated error rates on the API",
                        "status": "identified",
                        "message": (
                            "We have identified a faulty database failover causing **elevated error rates** on "
                            "the API and slow dashboard loads. Payments are not affected. Next update within "
                            "30 minutes."
                        ),
                        "components": {ids["API"]: "partial_outage", ids["Dashboard"]: "degraded_performance"},
                        "next_update_in_minutes": 30,
                        "agent": {
                            "talking_points": (
                                "Some API requests fail or are slow. No data has been lost. Payments work."
                            ),
                            "approved_answers": [
                                {
                                    "question": "When will it be fixed?",
                                    "answer": (
                                        "Engineers have found the cause; we will post an update within 30 minutes."
                                    ),
                                },
                                {"question": "Is my data safe?", "answer": "Yes. No data has been lost or exposed."},
                            ],
                            "do_not_say": "Do not promise a fix time. Do not name the database vendor.",
                            "escalation": "Enterprise customers with failed payments: transfer to billing on-call.",
                        },
                    }
                ),
                actor=Actor.system("demo"),
            )
            assert result.ref is not None
            lines.append(f"demo incident {result.ref['incident_id']} posted")
            if subscribed:
                lines.append(f"{subscribed} demo subscribers at sandbox addresses (email, SMS, webhook)")
        else:
            lines.append("demo data already present")
        if playbooks_loaded:
            lines.append(
                f"{playbooks_loaded['playbooks']} crisis playbooks and {playbooks_loaded['contacts']} contacts loaded"
            )
        if templates_added:
            lines.append(f"{templates_added} incident templates added")
        for username, role, password in logins:
            lines.append(f"{role} login (shown once): {username} / {password}")
        lines.append("API token (shown once):")
        lines.append(token)
    finally:
        await rt.aclose()
    return lines


def secret_file(settings: Settings) -> Path:
    """Where ``up`` keeps its key: next to the SQLite database file, else in the working directory."""
    if settings.is_sqlite:
        database = (make_url(settings.database_url).database or "").removeprefix("file:")
        if database and database != ":memory:":
            return Path(database).resolve().parent / SECRET_FILE_NAME
    return Path.cwd() / SECRET_FILE_NAME


def kept_secret_key(path: Path) -> str:
    """The random key kept in ``path``; made on first use, readable by its owner only (0600)."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        key = ""
    if len(key.encode()) >= MIN_SECRET_KEY_BYTES:
        return key
    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    path.chmod(0o600)  # an existing file keeps its mode through os.open
    return key


def with_kept_secret(settings: Settings) -> tuple[Settings, Path | None]:
    """``settings`` with the kept random key when no key is configured (the default), and the file holding it.

    A key set through ``BROADCASTER_SECRET_KEY`` (or ``.env``) is used as it is: ``(settings, None)``.
    """
    if settings.secret_key.get_secret_value() != DEFAULT_SECRET_KEY:
        return settings, None
    path = secret_file(settings)
    return settings.model_copy(update={"secret_key": SecretStr(kept_secret_key(path))}), path
