"""One Jinja2 environment over ``templates/``, one folder per channel."""

from __future__ import annotations

from datetime import UTC
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from broadcaster.config import get_settings
from broadcaster.models import humanize


def _datetime(value: Any, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    """A timestamp in UTC (aware values are converted; naive ones are taken as UTC)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return str(value.strftime(fmt))


@lru_cache(maxsize=4)
def environment(templates_dir: Path | None = None, autoescape: bool = True) -> jinja2.Environment:
    """The environment for ``templates_dir`` (default: the configured one).

    ``autoescape`` is on for HTML; text templates (``*.txt``) are never escaped.
    """
    root = templates_dir or get_settings().templates_dir
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "xml", "htm")) if autoescape else False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["humanize"] = humanize
    env.filters["datetime"] = _datetime
    return env


def render_template(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` with ``context``."""
    return environment().get_template(name).render(**context)
