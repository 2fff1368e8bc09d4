"""The result model: what a check says, and what a run reports.

Everything a report format, a pipeline gate or a runbook reads is defined here, as
plain dataclasses, so the library API and every output agree on one shape.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Outcome of one check (or one finding).

    ``error`` means the check itself broke, ``blocked`` that a check it depends on
    failed, ``unknown`` that the doctor could not look (permission, unreachable API),
    ``skipped`` that it does not apply (identity variant, opt-in not given).
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"

    @property
    def is_problem(self) -> bool:
        """A finding that says something is wrong with the system under test."""
        return self in (Status.FAIL, Status.WARN)

    @property
    def is_incomplete(self) -> bool:
        """The doctor could not reach a verdict."""
        return self in (Status.ERROR, Status.UNKNOWN)


# Worst first: the status of a check is the worst status among its findings.
STATUS_RANK: dict[Status, int] = {
    Status.FAIL: 0,
    Status.ERROR: 1,
    Status.BLOCKED: 2,
    Status.WARN: 3,
    Status.UNKNOWN: 4,
    Status.PASS: 5,
    Status.SKIPPED: 6,
}


class Severity(str, enum.Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r} (expected one of: {names})") from None


_SEVERITY_ORDER = [Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


class Category(str, enum.Enum):
    LINT = "lint"
    KUBERNETES = "kubernetes"
    IDENTITY = "identity"
    AZURE = "azure"
    PIPELINE = "pipeline"


class Variant(str, enum.Enum):
    """How the sidecar authenticates. Checks declare which variants they apply to."""

    MANAGED_IDENTITY = "managedIdentity"  # IDENTITY_TYPE=userAssigned, VMSS/kubelet identity
    POD_IDENTITY = "podIdentity"  # IDENTITY_TYPE=userAssigned + aadpodidbinding label (NMI)
    AAD_APPLICATION = "aadApplication"  # Entra application + certificate
    WORKLOAD_IDENTITY = "workloadIdentity"


@dataclass
class Finding:
    """One observation. A check returns zero or more.

    ``evidence`` holds observed values (already redacted by the engine before any
    report sees them); ``location`` is ``file:line`` for static findings;
    ``remediation`` holds concrete commands with the real names filled in.
    ``explained_by`` names diagnosis codes that, when also present as problems in the
    same run, make this finding a consequence rather than a root cause.
    """

    code: str
    status: Status
    summary: str
    severity: Severity | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: list[str] = field(default_factory=list)
    location: str | None = None
    subject: str | None = None
    docs_url: str | None = None
    explained_by: tuple[str, ...] = ()
    # Filled by the engine.
    check_id: str = ""
    consequence_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "code": self.code,
            "status": self.status.value,
            "severity": self.severity.value if self.severity else None,
            "summary": self.summary,
            "subject": self.subject,
            "location": self.location,
            "evidence": self.evidence,
            "remediation": list(self.remediation),
            "docs_url": self.docs_url,
            "consequence_of": self.consequence_of,
        }


@dataclass
class CheckResult:
    """The outcome of one check for one target."""

    check_id: str
    title: str
    category: str
    status: Status
    severity: Severity
    target: str = ""
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)
    duration_s: float = 0.0
    blocked_by: str | None = None
    needs: str | None = None  # for unknown: the permission/verb/resource that was missing
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "title": self.title,
            "category": self.category,
            "target": self.target,
            "status": self.status.value,
            "severity": self.severity.value,
            "summary": self.summary,
            "duration_ms": round(self.duration_s * 1000, 3),
            "blocked_by": self.blocked_by,
            "needs": self.needs,
            "error": self.error,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class RootCause:
    target: str
    check_id: str
    code: str
    status: Status
    severity: Severity
    summary: str
    remediation: list[str] = field(default_factory=list)
    consequences: list[str] = field(default_factory=list)  # check ids blocked by / explained by it

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "check_id": self.check_id,
            "code": self.code,
            "status": self.status.value,
            "severity": self.severity.value,
            "summary": self.summary,
            "remediation": list(self.remediation),
            "consequences": list(self.consequences),
        }


@dataclass
class Target:
    """What a run looked at: files for lint, a pod for a live run, a lab scenario."""

    id: str
    kind: str  # "files" | "pod" | "lab" | "probe"
    description: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "description": self.description, **self.attributes}


SCHEMA_VERSION = "1.0"


@dataclass
class Report:
    """Everything one invocation found. Rendered by ``promrw_doctor.reports``."""

    command: str
    targets: list[Target]
    results: list[CheckResult]
    root_causes: list[RootCause]
    started_at: str
    duration_s: float
    context: dict[str, Any] = field(default_factory=dict)
    tool_version: str = ""

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def problem_findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings if f.status.is_problem]

    def to_dict(self, exit_code: int | None = None) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "promrw-doctor", "version": self.tool_version},
            "command": self.command,
            "started_at": self.started_at,
            "duration_ms": round(self.duration_s * 1000, 3),
            "context": self.context,
            "targets": [t.to_dict() for t in self.targets],
            "summary": self.counts(),
            "exit_code": exit_code,
            "root_causes": [rc.to_dict() for rc in self.root_causes],
            "results": [r.to_dict() for r in self.results],
        }


def worst_status(statuses: list[Status], default: Status = Status.PASS) -> Status:
    if not statuses:
        return default
    return min(statuses, key=lambda s: STATUS_RANK[s])


def as_evidence(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values so evidence stays short and readable."""
    return {k: v for k, v in values.items() if v is not None}
