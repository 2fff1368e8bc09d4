"""lint.pod-identity-label, lint.pod-identity-client-id, lint.pod-identity-deprecated."""

from __future__ import annotations

from promrw_doctor.core.model import Severity, Status

from .helpers import fails, line, result, run

BINDING = "seed-binding-fixed.yaml"


def test_label_pass() -> None:
    r = result(run(BINDING, "good/pod-identity-values.yaml"), "lint.pod-identity-label")
    assert r.status == Status.PASS and "matches AzureIdentityBinding demo1-azure-identity-binding" in r.summary


def test_label_missing() -> None:
    (f,) = fails(run(BINDING, "broken/pod-identity-label-missing-values.yaml"), "lint.pod-identity-label",
                 "POD_IDENTITY_LABEL_MISSING")
    assert f.evidence["binding_selectors"] == ["prom-rw"]
    assert f.remediation == ["prometheus:\n  prometheusSpec:\n    podMetadata:\n      labels:\n"
                             "        aadpodidbinding: prom-rw"]


def test_label_case_near_miss() -> None:
    (f,) = fails(run(BINDING, "broken/pod-identity-selector-case-values.yaml"), "lint.pod-identity-label",
                 "POD_IDENTITY_BINDING_MISMATCH")
    assert f.evidence["near_miss"] == ["case"] and line(f) == 10
    assert "only by case" in f.summary


def test_label_vs_invalid_binding_is_a_consequence() -> None:
    report = run("seed-binding.yaml", "good/pod-identity-values.yaml")
    (f,) = result(report, "lint.pod-identity-label").findings
    assert f.code == "POD_IDENTITY_BINDING_MISMATCH" and f.consequence_of == "POD_IDENTITY_BINDING_INVALID"


def test_managed_identity_is_not_pod_identity() -> None:
    report = run("good/managed-identity-values.yaml")
    for check_id in ("lint.pod-identity-label", "lint.pod-identity-client-id", "lint.pod-identity-deprecated"):
        assert result(report, check_id).status == Status.SKIPPED
    assert report.context["variant"] == "managedIdentity"


def test_client_id_pass_and_mismatch() -> None:
    assert result(run(BINDING, "good/pod-identity-values.yaml"), "lint.pod-identity-client-id").status == Status.PASS
    (f,) = fails(run(BINDING, "broken/pod-identity-client-id-mismatch-values.yaml"), "lint.pod-identity-client-id",
                 "POD_IDENTITY_CLIENT_ID_MISMATCH")
    assert f.evidence["identity_client_id"] == "7eb6c1d4-2f3a-4b5c-8d9e-0a1b2c3da6a9"
    assert f.remediation == ["- name: AZURE_CLIENT_ID\n  value: 7eb6c1d4-2f3a-4b5c-8d9e-0a1b2c3da6a9"]


def test_deprecated_note() -> None:
    report = run(BINDING, "good/pod-identity-values.yaml")
    assert report.context["variant"] == "podIdentity"
    r = result(report, "lint.pod-identity-deprecated")
    (f,) = r.findings
    assert (r.status, f.status, f.severity, f.code) == (Status.PASS, Status.PASS, Severity.INFO,
                                                       "POD_IDENTITY_DEPRECATED")
    assert any("azure.workload.identity/use" in x for x in f.remediation)
