"""Logging: plain text, or one JSON object per line with ``BROADCASTER_LOG_FORMAT=json``.

Context fields (``update_id``, ``channel``, ``job_id``, ``incident_id``) reach every line
logged while they are set, from any module, without passing them around::

    with log_context(update_id=update_id, channel=channel, job_id=job_id):
        ...  # every log line in here (and in tasks started here) carries them

A field given explicitly with ``extra=`` wins over the context.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

CONTEXT_FIELDS = ("update_id", "channel", "job_id", "incident_id")
# httpx logs every request's full URL at INFO, and subscribers' webhook URLs are often secrets
# (a token in the path or query); oauthlib logs the OAuth parameters it signs (X's access token)
# at DEBUG; botocore (the mirror's S3 client) logs signed request headers, a session token among them,
# at DEBUG: these loggers speak only from WARNING up.
QUIET_LOGGERS = ("httpx", "httpcore", "oauthlib", "botocore", "boto3", "s3transfer", "urllib3")
# Periodic or per-job chatter (arq's line per job run, the cron runs, alembic's plugin list, the
# web server's start-up lines): from WARNING up, unless the level is DEBUG.
CHATTY_LOGGERS = ("arq", "alembic", "_granian", "granian", "uvicorn.error")


def chatty_level(level: int) -> int:
    """The level of ``CHATTY_LOGGERS`` when the app logs at ``level``."""
    return level if level <= logging.DEBUG else max(level, logging.WARNING)


_context: ContextVar[Mapping[str, Any]] = ContextVar("broadcaster_log_context", default=MappingProxyType({}))


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (``None`` values skipped) to every log line of this task while the block runs."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, Any]:
    """The context fields set for the running task."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Copies the task's context fields onto each record (a handler filter: sees every logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with ``key=value`` context fields appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{f}={getattr(record, f)}" for f in CONTEXT_FIELDS if hasattr(record, f))
        return f"{line} [{context}]" if context else line


def make_handler(log_format: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) in ``log_format`` ("json" or "text") carrying context fields."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(log_format: str = "text", level: int | str = logging.INFO) -> None:
    """Send every logger's lines to stderr in ``log_format``, from ``level`` up (chatter from WARNING up
    unless ``level`` is DEBUG)."""
    level = _level_number(level)
    root = logging.getLogger()
    root.handlers[:] = [make_handler(log_format)]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(chatty_level(level))


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"BROADCASTER_LOG_LEVEL {level!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
    return number


def logging_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """The same setup as a ``logging.config.dictConfig`` dict, for the web servers' own log
    settings (uvicorn's ``log_config``, granian's ``--log-config``), which they apply in every
    web process they start."""
    formatter = "broadcaster.logs.JsonFormatter" if log_format == "json" else "broadcaster.logs.TextFormatter"
    number = _level_number(level)
    level = logging.getLevelName(number)
    quiet = logging.getLevelName(max(number, logging.WARNING))
    chatty = logging.getLevelName(chatty_level(number))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "filters": {"context": {"()": "broadcaster.logs.ContextFilter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            **{name: {"handlers": [], "propagate": True, "level": level} for name in ("uvicorn",)},
            # access lines carry query strings, and links carry secrets (?token=): only from WARNING up
            **{
                name: {"handlers": [], "propagate": True, "level": quiet}
                for name in ("uvicorn.access", "granian.access")
            },
            **{name: {"handlers": [], "propagate": True, "level": quiet} for name in QUIET_LOGGERS},
            **{name: {"handlers": [], "propagate": True, "level": chatty} for name in CHATTY_LOGGERS},
        },
    }
