"""lint.workload-identity-label."""

from __future__ import annotations

import pytest

from promrw_doctor.core.model import Status

from .helpers import fails, result, run


def test_label_pass() -> None:
    report = run("good/workload-identity-values.yaml")
    assert result(report, "lint.workload-identity-label").status == Status.PASS
    assert report.context["variant"] == "workloadIdentity"


@pytest.mark.parametrize("fixture, text", [
    ("broken/workload-identity-label-missing-values.yaml", "is missing"),
    ("broken/workload-identity-label-bool-values.yaml", "YAML boolean true"),
])
def test_label_fail(fixture: str, text: str) -> None:
    (f,) = fails(run(fixture), "lint.workload-identity-label", "WORKLOAD_IDENTITY_MISCONFIGURED")
    assert text in f.summary
    assert 'azure.workload.identity/use: \'true\'' in f.remediation[0]


def test_skipped_for_other_identity_types() -> None:
    assert result(run("good/managed-identity-values.yaml"), "lint.workload-identity-label").status == Status.SKIPPED
