"""The words for statuses and impacts, in the current language.

``label("partial_outage")`` is "Partial outage" in English; the catalogs' ``labels`` domain
translates each. A value this table does not know is humanized as before, untranslated.
"""

from __future__ import annotations

from broadcaster.i18n import N_, gettext, pgettext
from broadcaster.models import humanize

LABELS: dict[str, str] = {
    # component statuses
    "operational": N_("Operational"),
    "degraded_performance": N_("Degraded performance"),
    "partial_outage": N_("Partial outage"),
    "major_outage": N_("Major outage"),
    "under_maintenance": N_("Under maintenance"),
    # incident statuses
    "investigating": N_("Investigating"),
    "identified": N_("Identified"),
    "monitoring": N_("Monitoring"),
    "resolved": N_("Resolved"),
    "postmortem": N_("Postmortem"),
    # maintenance statuses
    "scheduled": N_("Scheduled"),
    "in_progress": N_("In progress"),
    "verifying": N_("Verifying"),
    "completed": N_("Completed"),
}

# Impacts share words with statuses in English ("major", "maintenance") but not in every
# language (gender, number), so they have their own context.
IMPACTS: dict[str, tuple[str, str]] = {
    "none": ("impact", "None"),
    "minor": ("impact", "Minor"),
    "major": ("impact", "Major"),
    "critical": ("impact", "Critical"),
    "maintenance": ("impact", "Maintenance"),
}


def label(value: str | None) -> str:
    """A status's label in the current language (``humanize`` for one it does not know)."""
    if not value:
        return ""
    known = LABELS.get(value)
    return gettext(known) if known else humanize(value)


def impact_label(value: str | None) -> str:
    """An impact's label in the current language."""
    if not value:
        return ""
    known = IMPACTS.get(value)
    return pgettext(*known) if known else humanize(value)


def _mark_impacts() -> None:  # pragma: no cover - never called; pgettext calls for extraction
    pgettext("impact", "None")
    pgettext("impact", "Minor")
    pgettext("impact", "Major")
    pgettext("impact", "Critical")
    pgettext("impact", "Maintenance")
