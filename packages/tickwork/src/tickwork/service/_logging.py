"""Logging setup for ``tickwork run``: human-readable text or one JSON object per line.

JSON records carry ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``task``
(when the record has a ``task`` attribute, which the core passes with ``extra={"task": name}``),
``action``, ``client``, ``actor`` and ``result`` (the audit lines of operator actions, logger
``tickwork.audit``) and ``exc_info`` (the formatted traceback, when there is one).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TypeAlias

__all__ = ["LogFormat", "configure_logging"]

LogFormat: TypeAlias = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Record attributes (given with ``extra=``) that JSON lines carry as fields of their own.
_FIELDS = ("task", "action", "client", "actor", "result")

# Loggers whose INFO lines repeat ours or are noise for an operator; shown at debug level.
_QUIET_LOGGERS = ("uvicorn.access", "uvicorn.error")


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a single-line JSON object."""
        data: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                data[field] = str(value)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        # default=str: a message argument that is not JSON-safe must not lose the line.
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str = "info", fmt: LogFormat = "text") -> None:
    """Send every log record at ``level`` and above to stderr in the chosen format.

    Replaces the root logger's handlers, so calling it twice does not duplicate lines.

    Args:
        level: A level name, case-insensitive (``debug``, ``info``, ``warning``, ``error``,
            ``critical``).
        fmt: ``"text"`` for human-readable lines, ``"json"`` for one JSON object per line.

    Raises:
        ValueError: Unknown level or format.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(
            f"log level must be debug, info, warning, error or critical, got {level!r}"
        )
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif fmt == "text":
        formatter = logging.Formatter(TEXT_FORMAT)
    else:
        raise ValueError(f"log format must be 'text' or 'json', got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if numeric >= logging.INFO else numeric)


def flush_logging() -> None:
    """Flush every handler of the root logger (before an ``os._exit``)."""
    for handler in logging.getLogger().handlers:
        # Nothing is left to report a failing handler to at exit.
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stderr.flush()
    sys.stdout.flush()
