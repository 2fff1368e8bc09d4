"""Exceptions with a meaning the engine and the CLI act on.

Collectors and checks raise these instead of returning sentinel values, so the
engine can turn them into the right status (``unknown``, ``skipped``) and the CLI
into the right exit code (2 for bad input) without a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3


class DoctorError(Exception):
    """Base class for errors promrw-doctor reports as one line."""

    exit_code = EXIT_USAGE


class InputError(DoctorError):
    """Bad user input: flags, files, env, an unusable target. Exit code 2."""


class RegistryError(DoctorError):
    """The check set cannot be loaded: duplicate id, unknown dependency, cycle. Exit code 2."""


class AccessDenied(Exception):
    """The doctor's own identity may not read something.

    ``needs`` names exactly what is missing, e.g. ``"list pods in namespace monitoring"``
    or ``"Reader on /subscriptions/…/resourceGroups/MA_…"``. Checks that need the data
    become ``unknown`` naming it; never ``fail``.
    """

    def __init__(self, needs: str, detail: str = "") -> None:
        super().__init__(needs if not detail else f"{needs}: {detail}")
        self.needs = needs
        self.detail = detail


class Unreachable(Exception):
    """An API the doctor needs did not answer (DNS, TLS, connect, timeout). -> ``unknown``."""

    def __init__(self, what: str, detail: str = "") -> None:
        super().__init__(what if not detail else f"{what}: {detail}")
        self.what = what
        self.detail = detail


class NotApplicable(Exception):
    """The data does not apply to this target (e.g. no certificate for managed identity). -> ``skipped``."""


class Skip(Exception):
    """Raised by a check: it does not apply, with the reason (and how to enable it)."""


class Unknown(Exception):
    """Raised by a check: it could not look. ``needs`` names the permission or input missing."""

    def __init__(self, message: str, needs: str | None = None) -> None:
        super().__init__(message)
        self.needs = needs
