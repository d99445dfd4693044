"""The compose form of the console: parsing, previews of every channel, and the preview token.

Sending needs a token the preview endpoint signed over a hash of the exact content it
previewed, so nothing the commander has not seen rendered can go out: change one character
after the preview and the send is refused (409) until the preview has caught up.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.datastructures import FormData

from broadcaster.config import Settings
from broadcaster.errors import InputError
from broadcaster.i18n import gettext
from broadcaster.post_requests import FollowUp, NewIncident, request_from_body
from broadcaster.security import LinkSigner
from status_page.console._kit import text

PREVIEW_PURPOSE = "console-preview"
PREVIEW_MAX_AGE_S = 6 * 3600

_TEXT_FIELDS = ("talking_points", "do_not_say", "escalation")
# A maintenance's automation (broadcaster.domain.maintenance): sent only when filled in.
MAINTENANCE_TEXT_FIELDS = ("rrule", "auto_start_message", "auto_complete_message")
MAINTENANCE_FIELDS = (
    "scheduled_for",
    "scheduled_until",
    "auto_transition",
    "remind_before_minutes",
    *MAINTENANCE_TEXT_FIELDS,
)
MAINTENANCE_DEFAULTS: dict[str, Any] = {"auto_transition": True, "remind_before_minutes": ""} | dict.fromkeys(
    MAINTENANCE_TEXT_FIELDS, ""
)


def _minutes(form: FormData) -> int | None:
    raw = text(form, "next_update_in_minutes")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InputError(
            "invalid input", {"next_update_in_minutes": gettext("must be a whole number of minutes")}
        ) from None


def _maintenance_options(form: FormData) -> dict[str, Any]:
    """The automation fields of the maintenance form; a box left unticked is ``auto_transition: false``."""
    options: dict[str, Any] = {name: text(form, name) for name in MAINTENANCE_TEXT_FIELDS if text(form, name)}
    if text(form, "auto_transition_shown"):
        options["auto_transition"] = bool(text(form, "auto_transition"))
    lead = text(form, "remind_before_minutes")
    if lead:
        try:
            options["remind_before_minutes"] = float(lead)
        except ValueError:
            raise InputError(
                "invalid input", {"remind_before_minutes": gettext("must be a number of minutes")}
            ) from None
    return options


def _utc_time(form: FormData, name: str) -> str | None:
    """A ``datetime-local`` value (taken as UTC) or an ISO time with a zone."""
    raw = text(form, name)
    if not raw:
        return None
    if raw.endswith("Z") or "+" in raw[10:] or raw[10:].count("-") > 0:
        return raw
    return raw + ("+00:00" if len(raw) > 16 else ":00+00:00")


def translation_languages(settings: Settings) -> list[str]:
    """The languages the compose form offers a translation into: every offered one but the default."""
    return [code for code in settings.languages if code != settings.default_language]


def _translations(form: FormData) -> dict[str, dict[str, str]]:
    """``translation.<code>.title`` and ``translation.<code>.message``, for the languages with any filled in."""
    found: dict[str, dict[str, str]] = {}
    for key, value in form.multi_items():
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "translation" or parts[2] not in ("title", "message"):
            continue
        if isinstance(value, str) and value.strip():
            found.setdefault(parts[1], {})[parts[2]] = value.strip()
    return found


def compose_body(form: FormData) -> dict[str, Any]:
    """The form as the API body it stands for; the same function serves preview and send."""
    body: dict[str, Any] = {
        "status": text(form, "status") or "investigating",
        "message": text(form, "message"),
        "components": {
            key.removeprefix("component."): value
            for key, value in form.multi_items()
            if key.startswith("component.") and isinstance(value, str) and value
        },
        "next_update_in_minutes": _minutes(form),
    }
    if text(form, "channels_shown"):
        body["channels"] = [v for v in form.getlist("channels") if isinstance(v, str)]
    impact = text(form, "impact")
    if impact:
        body["impact"] = impact
    agent: dict[str, Any] = {name: text(form, name) for name in _TEXT_FIELDS}
    questions = [q.strip() if isinstance(q, str) else "" for q in form.getlist("answer_question")]
    answers = [a.strip() if isinstance(a, str) else "" for a in form.getlist("answer_answer")]
    agent["approved_answers"] = [
        {"question": q, "answer": a} for q, a in zip(questions, answers, strict=False) if q or a
    ]
    if any(agent.values()):
        body["agent"] = agent
    translations = _translations(form)
    if translations:  # left out when empty: the body (and its preview hash) stays what it was without
        body["translations"] = translations
    incident_id = text(form, "incident_id")
    if incident_id:
        body["incident_id"] = incident_id
    else:
        body["title"] = text(form, "title")
        body["kind"] = text(form, "kind") or "incident"
        if body["kind"] == "maintenance":
            body["scheduled_for"] = _utc_time(form, "scheduled_for")
            body["scheduled_until"] = _utc_time(form, "scheduled_until")
            body.update(_maintenance_options(form))
        template_id = text(form, "template_id")
        if template_id:
            body["template_id"] = template_id
    return body


def content_hash(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a compose body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sign_preview(settings: Settings, body: dict[str, Any], username: str) -> str:
    signer = LinkSigner(settings.secret_key.get_secret_value())
    return signer.sign(PREVIEW_PURPOSE, {"h": content_hash(body), "u": username})


def preview_matches(settings: Settings, body: dict[str, Any], username: str, token: str) -> bool:
    """True when ``token`` was signed for exactly this content, by this user, recently."""
    if not token:
        return False
    signer = LinkSigner(settings.secret_key.get_secret_value())
    value = signer.verify(PREVIEW_PURPOSE, token, PREVIEW_MAX_AGE_S)
    return isinstance(value, dict) and value.get("u") == username and value.get("h") == content_hash(body)


def api_body(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The body for ``posting.post`` and the incident it updates (None for a new incident)."""
    data = dict(body)
    incident_id = data.pop("incident_id", None)
    if incident_id:
        for key in ("title", "kind", "template_id", *MAINTENANCE_FIELDS):
            data.pop(key, None)
    elif data.get("kind") != "maintenance":
        for key in MAINTENANCE_FIELDS:
            data.pop(key, None)
    return data, incident_id


def compose_request(body: dict[str, Any]) -> NewIncident | FollowUp:
    """The compose body as what ``posting.post`` (and its dry run, the preview) takes."""
    data, incident_id = api_body(body)
    return request_from_body(data, incident_id)
