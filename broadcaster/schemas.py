"""Input shapes shared by the REST API, the console and the CLI, validated with pydantic.

``validate(Model, data)`` turns pydantic's errors into one ``InputError`` whose ``fields``
name each bad field, which the web layer answers as a 4xx in the design's error shape.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from broadcaster.errors import InputError
from broadcaster.models import ComponentStatus, Impact, IncidentStatus, MaintenanceStatus

Model = TypeVar("Model", bound=BaseModel)

MAX_MESSAGE_CHARS = 60_000


_validating: ContextVar[bool] = ContextVar("broadcaster_validating", default=False)


class Strict(BaseModel):
    """The base of every input model: unknown fields refused, strings stripped, and no NUL anywhere.

    PostgreSQL cannot store NUL (``\\x00``) in text, so a NUL in any string field, list item or
    mapping key is refused here, naming the field, on every backend alike.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def __init__(self, **data: Any) -> None:
        """Built directly (``SubscriberIn(address=...)``) rather than through ``validate``, bad values
        are the same ``InputError`` naming the fields: a 422, never a 500. Validated inside another
        model, the error stays pydantic's, so the field's name keeps its parents' path."""
        if _validating.get():
            super().__init__(**data)
            return
        token = _validating.set(True)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise input_error(exc) from None
        finally:
            _validating.reset(token)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError(NUL_REASON)
        return value


NUL_REASON = "must not contain a NUL character"


def has_nul(value: Any) -> bool:
    """Whether a NUL is in ``value``: a string, or the strings (keys included) of nested lists and dicts.

    Nested ``Strict`` models are skipped: they checked their own fields. Iterative, so any depth is safe.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
    return False


class ApprovedAnswerIn(Strict):
    question: str = Field(min_length=1, max_length=1000)
    answer: str = Field(min_length=1, max_length=5000)


class AgentNotesIn(Strict):
    """Agent material versioned with an update."""

    talking_points: str = Field(default="", max_length=20_000)
    approved_answers: list[ApprovedAnswerIn] = Field(default_factory=list, max_length=100)
    do_not_say: str = Field(default="", max_length=10_000)
    escalation: str = Field(default="", max_length=10_000)


class ComponentIn(Strict):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    group: str | None = Field(default=None, max_length=255, description="name of the group, created if new")
    group_id: str | None = Field(default=None, max_length=32)
    status: ComponentStatus = ComponentStatus.OPERATIONAL
    position: int | None = Field(default=None, ge=0, le=100_000)
    showcase: bool = True
    only_show_if_degraded: bool = False


class ComponentPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    status: ComponentStatus | None = None
    position: int | None = Field(default=None, ge=0, le=100_000)
    group_id: str | None = Field(default=None, max_length=32)
    showcase: bool | None = None
    only_show_if_degraded: bool | None = None
    notify: bool = False
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    deliver_notifications: bool = True


def not_blank(cls: type[BaseModel], value: str) -> str:
    """A validator: white space alone is no text."""
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class TranslationIn(Strict):
    """The update in one more language; ``title`` retitles the incident in that language."""

    title: str | None = Field(default=None, min_length=1, max_length=255)
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)

    _not_blank = field_validator("message")(not_blank)


MAX_TRANSLATIONS = 20


class UpdateIn(Strict):
    """A new update on an existing incident or maintenance."""

    status: str
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    components: dict[str, ComponentStatus] = Field(default_factory=dict, max_length=500)
    channels: list[str] | None = Field(default=None, max_length=50)
    next_update_in_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    impact: Impact | None = None
    deliver_notifications: bool = True
    agent: AgentNotesIn | None = None
    translations: dict[str, TranslationIn] = Field(
        default_factory=dict, max_length=MAX_TRANSLATIONS, description="language code → the update in it"
    )

    _not_blank = field_validator("message")(not_blank)


MAX_REMIND_BEFORE_MINUTES = 30 * 24 * 60
MAX_RRULE_CHARS = 500


class MaintenanceOptions(Strict):
    """How a maintenance runs itself (``broadcaster.domain.maintenance``); refused on an incident."""

    auto_transition: bool = True  # start and complete at the window's edges; false: by hand
    auto_start_message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    auto_complete_message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    rrule: str | None = Field(default=None, max_length=MAX_RRULE_CHARS, description="RFC 5545 RRULE")
    # minutes before the start (fractions allowed: 0.5 is 30 s); None: the setting's default; 0: no reminder
    remind_before_minutes: float | None = Field(default=None, ge=0, le=MAX_REMIND_BEFORE_MINUTES, allow_inf_nan=False)


class MaintenancePatch(MaintenanceOptions):
    """``PATCH /api/v1/incidents/{id}`` of a maintenance: only the fields sent change."""

    scheduled_for: str | None = None
    scheduled_until: str | None = None
    components: dict[str, ComponentStatus] | None = Field(default=None, max_length=500)
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS, description="the notice of the edit")


class IncidentIn(MaintenanceOptions, UpdateIn):
    """A new incident and its first update."""

    title: str = Field(min_length=1, max_length=255)
    status: str = IncidentStatus.INVESTIGATING.value
    kind: str = Field(default="incident", pattern="^(incident|maintenance)$")
    scheduled_for: str | None = None
    scheduled_until: str | None = None
    template_id: str | None = Field(default=None, max_length=32)


class PreviewIn(IncidentIn):
    """``POST /api/v1/preview``'s body as documented: an update with ``incident_id``, or a new incident.

    The preview validates it exactly as the post would (``UpdateIn`` or ``IncidentIn``).
    """

    incident_id: str | None = Field(default=None, max_length=32)
    title: str | None = Field(default=None, min_length=1, max_length=255)  # type: ignore[assignment]


class SubscriberIn(Strict):
    channel: str = Field(pattern="^(email|sms|webhook|slack|teams|discord|google_chat)$")
    address: str = Field(min_length=3, max_length=512)
    components: list[str] = Field(default_factory=list, max_length=500)
    confirmed: bool = False
    # the language of their messages and pages (checked against the offered ones where it is stored);
    # None: the page's default. Left out on an existing subscriber: theirs is kept.
    language: str | None = Field(default=None, max_length=35, description="a language the page offers, e.g. fr")


INCIDENT_STATUSES = {s.value for s in IncidentStatus}
MAINTENANCE_STATUSES = {s.value for s in MaintenanceStatus}


def check_status(kind: str, status: str) -> None:
    """An update's status must belong to its kind's vocabulary."""
    allowed = MAINTENANCE_STATUSES if kind == "maintenance" else INCIDENT_STATUSES
    if status not in allowed:
        raise InputError("invalid status", {"status": f"must be one of: {', '.join(sorted(allowed))}"})


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def validate(model: type[Model], data: Any) -> Model:
    """Validate ``data`` into ``model`` or raise ``InputError`` naming every bad field."""
    if not isinstance(data, dict):
        raise InputError("the body must be a JSON object", {"body": "expected an object"})
    token = _validating.set(True)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc) from None
    finally:
        _validating.reset(token)


def input_error(exc: ValidationError) -> InputError:
    """pydantic's errors as one ``InputError`` naming each bad field."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        fields.setdefault(_field_name(error["loc"]), error["msg"])
    return InputError("invalid input", fields)
