"""Drive the real loader + registry + engine over lint fixtures."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from promrw_doctor.core import Registry, load_registry
from promrw_doctor.core.engine import exit_code_for
from promrw_doctor.core.model import CheckResult, Finding, Report, Status
from promrw_doctor.lint import lint

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lint"


@cache
def registry() -> Registry:
    return load_registry(entry_points=False)


def fx(name: str) -> str:
    path = FIXTURES / name
    assert path.exists(), path
    return str(path)


def run(*names: str, **kw: object) -> Report:
    return lint([fx(n) for n in names], registry=registry(), **kw)  # type: ignore[arg-type]


def result(report: Report, check_id: str) -> CheckResult:
    matches = [r for r in report.results if r.check_id == check_id]
    assert len(matches) == 1, f"{check_id}: {[r.check_id for r in report.results]}"
    return matches[0]


def problems(report: Report, code: str | None = None) -> list[Finding]:
    return [f for f in report.problem_findings() if code is None or f.code == code]


def codes(report: Report) -> set[str]:
    return {f.code for f in report.problem_findings()}


def clean(report: Report) -> None:
    """Every check passed or was skipped, and the run exits 0."""
    bad = [(r.check_id, r.status.value, r.summary) for r in report.results
           if r.status not in (Status.PASS, Status.SKIPPED)]
    assert bad == []
    assert exit_code_for(report) == 0


def line(finding: Finding) -> int:
    assert finding.location is not None
    return int(finding.location.rsplit(":", 1)[1])


def fails(report: Report, check_id: str, code: str) -> list[Finding]:
    """The check failed with ``code``; return those findings."""
    r = result(report, check_id)
    assert r.status == Status.FAIL, (r.status, r.summary)
    found = [f for f in r.findings if f.code == code and f.status == Status.FAIL]
    assert found, [(f.code, f.status) for f in r.findings]
    assert exit_code_for(report) == 1
    return found
