"""Which sources each catalog domain holds (globs relative to the project's root).

One domain per area, so the page, the sign-up, the messages, the console and the desk each
have their own ``.po`` file per language; ``labels`` holds the statuses and impacts every
area shows.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DOMAINS: dict[str, tuple[str, ...]] = {
    "labels": ("broadcaster/i18n/labels.py", "broadcaster/i18n/__init__.py"),
    "page": (
        "broadcaster/templates/status_page/*.html",
        "status_page/public/pages.py",
        "status_page/public/html.py",
        "status_page/public/calendar.py",
        "broadcaster/views/public.py",
    ),
    "subscribe": (
        "broadcaster/templates/subscribe/*.html",
        "broadcaster/templates/email/confirm.*",
        "broadcaster/templates/sms/confirm.txt",
        "broadcaster/templates/sms/help.txt",
        "status_page/public/subscribe.py",
        "status_page/public/preferences.py",
        "broadcaster/jobs/confirmations.py",
    ),
    "messages": (
        "broadcaster/templates/email/update.*",
        "broadcaster/templates/sms/update.txt",
        "broadcaster/templates/chat/*",
        "broadcaster/templates/social/*",
        "broadcaster/templates/knowledge_base/*",
        "broadcaster/templates/contacts/*",
        "broadcaster/message.py",
        "channels/*.py",
    ),
    "console": (
        "broadcaster/templates/console/*.html",
        "broadcaster/templates/sandbox/*.html",
        "status_page/console/*.py",
        "status_page/auth.py",
    ),
    "desk": ("broadcaster/templates/desk/*.html", "status_page/desk.py", "status_page/desk_data.py"),
}
