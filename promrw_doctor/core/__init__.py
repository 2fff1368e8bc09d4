"""Core of promrw-doctor: result model, check registry, facts, engine, catalog, redaction.

The public surface a check author needs is re-exported here::

    from promrw_doctor.core import check, Status, Skip, Unknown
"""

from .errors import (
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_USAGE,
    AccessDenied,
    DoctorError,
    InputError,
    NotApplicable,
    RegistryError,
    Skip,
    Unknown,
    Unreachable,
)
from .facts import FactContext, FactStore, fact
from .model import (
    Category,
    CheckResult,
    Finding,
    Report,
    RootCause,
    Severity,
    Status,
    Target,
    Variant,
)
from .registry import CheckSpec, Registry, check, load_registry

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_INCOMPLETE",
    "EXIT_OK",
    "EXIT_USAGE",
    "AccessDenied",
    "Category",
    "CheckResult",
    "CheckSpec",
    "DoctorError",
    "FactContext",
    "FactStore",
    "Finding",
    "InputError",
    "NotApplicable",
    "Registry",
    "RegistryError",
    "Report",
    "RootCause",
    "Severity",
    "Skip",
    "Status",
    "Target",
    "Unknown",
    "Unreachable",
    "Variant",
    "check",
    "fact",
    "load_registry",
]
