"""What every console module shares: the page wrapper, role checks, form fields, redirects.

Console modules import this and never each other; ``status_page.console.routes`` joins them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from broadcaster.db import utcnow
from broadcaster.domain.users import has_role
from broadcaster.errors import InputError
from broadcaster.i18n import N_, gettext, labels, pgettext, using
from broadcaster.models import CLOSED_STATUSES, Role
from status_page.auth import check_csrf, csrf_token, require_role
from status_page.channel_alerts import channel_alerts
from status_page.pages import render_page

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "frame-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _words() -> dict[tuple[str, str], str]:
    """The console's value words in the current language, by (what it is, value)."""
    return {
        ("kind", "incident"): pgettext("kind", "incident"),
        ("kind", "maintenance"): pgettext("kind", "maintenance"),
        ("impact", "none"): pgettext("impact, in running text", "none"),
        ("impact", "minor"): pgettext("impact, in running text", "minor"),
        ("impact", "major"): pgettext("impact, in running text", "major"),
        ("impact", "critical"): pgettext("impact, in running text", "critical"),
        ("impact", "maintenance"): pgettext("impact, in running text", "maintenance"),
        ("role", "viewer"): pgettext("role", "viewer"),
        ("role", "agent"): pgettext("role", "agent"),
        ("role", "commander"): pgettext("role", "commander"),
        ("role", "admin"): pgettext("role", "admin"),
        ("draft", "open"): pgettext("draft kind", "open"),
        ("draft", "resolve"): pgettext("draft kind", "resolve"),
        ("state", "pending"): pgettext("draft state", "pending"),
        ("state", "published"): pgettext("draft state", "published"),
        ("state", "discarded"): pgettext("draft state", "discarded"),
    }


def word(what: str, value: str | None) -> str:
    """A stored value (a kind, an impact, a role, a draft's kind or state) as the reader's word for it;
    a value without a word is shown as it is."""
    if value is None:
        return ""
    return _words().get((what, value), value)


def in_page_language(request: Request) -> Callable[[str], str]:
    """``gettext`` into the page's default language: words that go into an update's message, which is
    written in that language whatever the console speaks."""
    language = request.app.state.settings.default_language

    def words(message: str) -> str:
        with using(language):
            return gettext(message)

    return words


def page(request: Request, template: str, user: dict[str, Any], status_code: int = 200, **context: Any) -> Response:
    """A console page with the user, CSRF token, the failing pre-flight checks' banner and security headers."""
    response = render_page(
        request,
        template,
        status_code=status_code,
        user=user,
        csrf_token=csrf_token(request),
        humanize=labels.label,  # a status's words in the reader's language
        word=word,
        N_=N_,
        in_page_language=in_page_language(request),
        can_post=has_role(user, Role.COMMANDER),
        is_admin=has_role(user, Role.ADMIN),
        channel_alerts=channel_alerts(request),
        **context,
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def viewer(request: Request) -> dict[str, Any]:
    """The user behind a read-only page: any console role."""
    return require_role(request, Role.VIEWER)


async def commander(request: Request) -> dict[str, Any]:
    """The user behind a state-changing request: CSRF checked, commander role or above."""
    user = require_role(request, Role.COMMANDER)
    await check_csrf(request)
    return user


def text(form: FormData, name: str) -> str:
    """A form field, stripped; "" when absent or a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def whole_number(value: str, field: str) -> int:
    """A form value that must be a non-negative whole number; 422 naming ``field`` otherwise."""
    if not value.isdigit():
        raise InputError("a number is needed", {field: "must be a whole number"})
    return int(value)


def late(incident: dict[str, Any]) -> bool:
    """Whether the incident's promised next update is overdue (it is open and the time has passed)."""
    next_at = incident.get("next_update_at")
    return bool(next_at and next_at < utcnow() and incident["status"] not in CLOSED_STATUSES)


def redirect(path: str) -> Response:
    """See other: the answer to every console form post."""
    return RedirectResponse(path, status_code=303)
