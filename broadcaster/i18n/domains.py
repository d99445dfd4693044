"""Which sources each catalog domain holds (globs relative to the project's root).

One domain per area, so the page, the sign-up, the messages, the console and the desk each
have their own ``.po`` file per language; ``labels`` holds the statuses and impacts every
area shows.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DOMAINS: dict[str, tuple[str, ...]] = {
    "labels": ("broadcaster/i18n/labels.py", "broadcaster/i18n/__init__.py"),
    "page": (
        "broadcaster/templates/status_page/base.html",
        "broadcaster/templates/status_page/index.html",
        "broadcaster/templates/status_page/incident.html",
        "broadcaster/templates/status_page/history.html",
        "broadcaster/templates/status_page/not_found.html",
        "broadcaster/templates/status_page/_macros.html",
        "broadcaster/templates/status_page/_contact.html",
        "broadcaster/templates/status_page/_mirror.html",
        "broadcaster/templates/status_page/feed.*.xml",
        "status_page/public/pages.py",
        "status_page/public/html.py",
        "status_page/public/calendar.py",
        "broadcaster/views/public.py",
    ),
    "subscribe": (
        "broadcaster/templates/status_page/_subscribe.html",
        "broadcaster/templates/subscribe/*.html",
        "broadcaster/templates/email/confirm.*",
        "broadcaster/templates/sms/confirm.txt",
        "broadcaster/templates/sms/help.txt",
        "status_page/public/subscribe.py",
        "status_page/public/preferences.py",
        "broadcaster/jobs/confirmations.py",
        "broadcaster/domain/signups.py",
    ),
    "messages": (
        "broadcaster/templates/email/update.*",
        "broadcaster/templates/sms/update.txt",
        "broadcaster/templates/chat/*",
        "broadcaster/templates/social/*",
        "broadcaster/templates/knowledge_base/*",
        "broadcaster/templates/contacts/*",
        "broadcaster/message.py",
        "channels/[!d]*.py",  # every channel but the desk's
        "channels/discord.py",
    ),
    "console": (
        "broadcaster/templates/console/base.html",
        "broadcaster/templates/console/login.html",
        "broadcaster/templates/console/dashboard.html",
        "broadcaster/templates/console/compose.html",
        "broadcaster/templates/console/_previews.html",
        "broadcaster/templates/console/incident.html",
        "broadcaster/templates/console/_replies.html",
        "broadcaster/templates/console/_drafts_banner.html",
        "broadcaster/templates/console/_preflight_banner.html",
        "broadcaster/templates/console/draft.html",
        "broadcaster/templates/console/drafts.html",
        "broadcaster/templates/console/ack.html",
        "status_page/console/__init__.py",
        "status_page/console/_kit.py",
        "status_page/console/compose_form.py",
        "status_page/console/dashboard.py",
        "status_page/console/drafts.py",
        "status_page/auth.py",
    ),
    # the console's other pages: playbooks, drills, reports, subscribers, users, settings, sandbox
    "admin": (
        "broadcaster/templates/console/alert_rules.html",
        "broadcaster/templates/console/audit.html",
        "broadcaster/templates/console/channels.html",
        "broadcaster/templates/console/contacts.html",
        "broadcaster/templates/console/deliveries.html",
        "broadcaster/templates/console/drill_page.html",
        "broadcaster/templates/console/drill_report.html",
        "broadcaster/templates/console/drills.html",
        "broadcaster/templates/console/page_settings.html",
        "broadcaster/templates/console/playbook.html",
        "broadcaster/templates/console/playbook_incident.html",
        "broadcaster/templates/console/playbooks.html",
        "broadcaster/templates/console/report.html",
        "broadcaster/templates/console/report.md",
        "broadcaster/templates/console/sandbox.html",
        "broadcaster/templates/console/sandbox_outbox.html",
        "broadcaster/templates/console/subscribers.html",
        "broadcaster/templates/console/subscribers_preview.html",
        "broadcaster/templates/console/templates.html",
        "broadcaster/templates/console/users.html",
        "broadcaster/templates/sandbox/*.html",
        "status_page/console/admin.py",
        "status_page/console/deliveries.py",
        "status_page/console/drills.py",
        "status_page/console/page_settings.py",
        "status_page/console/playbooks.py",
        "status_page/console/sandbox.py",
        "status_page/console/sandbox_chat.py",
        "status_page/console/subscribers_io.py",
    ),
    "desk": (
        "broadcaster/templates/desk/*.html",
        "status_page/desk.py",
        "status_page/desk_data.py",
        "channels/desk.py",
    ),
}


TEMPLATES_PREFIX = "broadcaster/templates/"


@lru_cache(maxsize=512)
def template_domain(name: str | None) -> str | None:
    """The domain whose sources hold template ``name`` (``desk/desk.html`` → ``desk``)."""
    if not name:
        return None
    path = TEMPLATES_PREFIX + name
    for domain, patterns in DOMAINS.items():
        if any(fnmatchcase(path, pattern) for pattern in patterns if pattern.startswith(TEMPLATES_PREFIX)):
            return domain
    return None
