"""logrus-style text log lines, the format the sidecar writes and runbooks grep.

``time="2022-11-02T21:32:59Z" level=info msg="Metric packets published in last 1 minute"
avgBytesPerRequest=19713 avgRequestDurationInSec=0.023 failedPublishing=0 successfullyPublished=122``

Structured fields are passed as ``extra={"fields": {...}}``; every value is redacted
on the way out, on top of the :class:`~promrw_doctor.core.redact.RedactingFilter`
that already cleans the message.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from ..core.redact import RedactingFilter, redact

LOGGER_NAME = "promrw_doctor.forwarder"
_BARE = re.compile(r"^[A-Za-z0-9_.:/@+\-]+$")
_LEVELS = {"WARNING": "warning", "CRITICAL": "fatal"}


def quote(value: Any) -> str:
    """A logfmt value: bare when safe, else double-quoted with escapes (logrus' rules)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text and _BARE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def format_line(level: str, msg: str, fields: Mapping[str, Any] | None = None,
                ts: float | None = None) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))
    parts = [f'time="{stamp}"', f"level={level}", f"msg={quote(redact(msg)) if msg else chr(34) * 2}"]
    for k, v in (fields or {}).items():
        parts.append(f"{k}={quote(redact(str(v)) if isinstance(v, str) else v)}")
    return " ".join(parts)


class LogrusFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = _LEVELS.get(record.levelname, record.levelname.lower())
        fields = getattr(record, "fields", None)
        line = format_line(level, record.getMessage(), fields if isinstance(fields, Mapping) else None,
                           record.created)
        if record.exc_info and record.levelno >= logging.ERROR:
            # One line only: the exception type and first line, never a traceback with locals.
            exc = record.exc_info[1]
            if exc is not None:
                first = str(exc).splitlines()[0] if str(exc) else ""
                line += " error=" + quote(redact(f"{type(exc).__name__}: {first}"))
        return line


def get_logger() -> logging.Logger:
    log = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, RedactingFilter) for f in log.filters):
        log.addFilter(RedactingFilter())
    return log


def install_handler(stream: Any = None, level: int = logging.INFO) -> logging.Handler:
    """Send forwarder + identity logs to ``stream`` (stderr, like logrus) in this format."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogrusFormatter())
    handler.addFilter(RedactingFilter())
    for name in (LOGGER_NAME, "promrw_doctor.identity"):
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False
    # azure-identity/MSAL repeat our own token errors as warnings; show them (redacted) only when debugging.
    for name in ("azure", "msal"):
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        lg.setLevel(level if level <= logging.DEBUG else logging.ERROR)
        lg.propagate = False
    return handler
