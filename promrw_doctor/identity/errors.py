"""Token acquisition failures as one redacted line plus a category a caller can act on.

azure-identity errors are multi-line, mention correlation ids and trace ids, and
sometimes quote request bodies; what the operator needs is *which identity* failed
and *why* in one line (``aadApplication (client id …): certificate file …: no such
file``). Everything passes through :func:`promrw_doctor.core.redact.redact`.
"""

from __future__ import annotations

import re
from typing import Literal

from ..core.redact import redact

Category = Literal[
    "config",  # settings are missing or unusable (file not found, bad certificate, bad authority)
    "unavailable",  # the token endpoint (IMDS/NMI) did not answer or refused to serve this identity
    "authentication",  # Entra answered and refused (AADSTS…)
    "network",  # DNS/connect/timeout to the token endpoint
    "tls",  # certificate verification of the token endpoint failed
]


class TokenError(Exception):
    """No token could be had. ``identity`` describes who, ``cause`` why (both one line, redacted)."""

    def __init__(self, identity: str, cause: str, category: Category = "authentication") -> None:
        self.identity = identity
        self.cause = redact(_one_line(cause)).rstrip(".")
        self.category: Category = category
        super().__init__(f"no token for {identity}: {self.cause}")


_AADSTS = re.compile(r"AADSTS\d+[^\r\n]*")


def describe_exception(exc: BaseException) -> tuple[Category, str]:
    """Map an azure-identity / transport exception to ``(category, one-line cause)``."""
    name = type(exc).__name__
    text = str(exc)
    if isinstance(exc, FileNotFoundError):
        return "config", f"file not found: {exc.filename or text}"
    if isinstance(exc, PermissionError):
        return "config", f"permission denied: {exc.filename or text}"
    low = text.lower()
    if "certificate_verify_failed" in low or "certificate verify failed" in low:
        return "tls", "TLS certificate verification of the token endpoint failed " \
                      "(set REQUESTS_CA_BUNDLE / --ca-bundle to the CA that signed it)"
    if name in ("ServiceRequestError", "ServiceRequestTimeoutError", "ConnectionError", "ConnectTimeout"):
        if "name or service not known" in low or "nodename nor servname" in low or "getaddrinfo" in low:
            return "network", f"DNS lookup of the token endpoint failed: {_first(text)}"
        if "timed out" in low or "timeout" in low:
            return "network", f"timed out reaching the token endpoint: {_first(text)}"
        return "network", f"cannot connect to the token endpoint: {_first(text)}"
    if name == "CredentialUnavailableError":
        return "unavailable", _first(text)
    if name == "ClientAuthenticationError":
        m = _AADSTS.search(text)
        if m:
            return "authentication", m.group(0).strip()
        return "authentication", _first(text)
    if isinstance(exc, ValueError):
        return "config", _first(text)
    return "authentication", f"{name}: {_first(text)}" if text else name


def _first(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return text.strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())
