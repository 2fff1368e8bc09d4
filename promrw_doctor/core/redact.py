"""Redaction of anything that looks like a secret, applied before a value reaches a report or a log.

The engine runs every finding through :func:`redact_value`; loggers use
:class:`RedactingFilter`. Patterns are deliberately broad: a false positive costs a
few characters of evidence, a false negative leaks a credential.
"""

from __future__ import annotations

import logging
import re
from typing import TypeVar

REDACTED = "[REDACTED]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys (any type), whole block.
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S),
     "-----BEGIN PRIVATE KEY-----" + REDACTED + "-----END PRIVATE KEY-----"),
    # JWTs (access tokens, client assertions, federated tokens).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Authorization headers.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # key=value / "key": "value" forms of well-known secret fields.
    (re.compile(
        r"(?i)(\"?(?:access_token|refresh_token|id_token|client_secret|client_assertion|password|passwd|"
        r"secret|token|sig|accountkey|sharedaccesskey|x-ms-token|api[_-]?key)\"?\s*[:=]\s*\"?)"
        r"([^\s\"&,;}]{4,})"),
     r"\1" + REDACTED),
    # Azure storage-style connection string keys.
    (re.compile(r"(?i)(AccountKey=)[^;\s]+"), r"\1" + REDACTED),
]

T = TypeVar("T")


def redact(text: str) -> str:
    """Return ``text`` with secret-looking substrings replaced by ``[REDACTED]``."""
    if not text:
        return text
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_value(value: T) -> T:
    """Redact strings inside nested dicts/lists/tuples; other values pass through."""
    if isinstance(value, str):
        return redact(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and _SECRET_KEY.search(k) and isinstance(v, str) and v:
                out[k] = REDACTED
            else:
                out[k] = redact_value(v)
        return out  # type: ignore[return-value]
    if isinstance(value, list):
        return [redact_value(v) for v in value]  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)  # type: ignore[return-value]
    return value


_SECRET_KEY = re.compile(
    r"(?i)^(access_token|refresh_token|id_token|client_secret|client_assertion|password|secret|token|"
    r"authorization|private_key|azure_client_secret|azure_client_certificate_password)$"
)


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message (and args) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - malformed record
            return True
        record.msg = redact(message)
        record.args = None
        return True
