"""lint.sidecar-present, lint.sidecar-env, lint.remote-write-url, lint.external-label-cluster."""

from __future__ import annotations

import pytest

from promrw_doctor.core.model import Severity, Status

from .helpers import fails, line, result, run


def test_sidecar_present_pass_and_skip() -> None:
    assert result(run("good/managed-identity-values.yaml"), "lint.sidecar-present").status == Status.PASS
    assert result(run("seed-binding-fixed.yaml"), "lint.sidecar-present").status == Status.SKIPPED


def test_sidecar_missing_is_one_root_cause() -> None:
    report = run("broken/sidecar-missing-values.yaml")
    (f,) = fails(report, "lint.sidecar-present", "SIDECAR_MISSING")
    assert f.evidence["containers"] == ["config-exporter"] and line(f) == 10
    assert "name: prom-remotewrite" in f.remediation[0]
    blocked = {r.check_id for r in report.results if r.status == Status.BLOCKED}
    assert {"lint.sidecar-env", "lint.ingestion-url", "lint.remote-write-url", "lint.sidecar-image"} <= blocked
    assert [rc.code for rc in report.root_causes] == ["SIDECAR_MISSING"]


def test_sidecar_env_pass() -> None:
    r = result(run("good/entra-cert-values.yaml", "good/entra-cert-spc.yaml"), "lint.sidecar-env")
    assert r.status == Status.PASS and "aadApplication" in r.summary


@pytest.mark.parametrize(
    "fixture, env, problem, at",
    [
        ("broken/env-missing-client-id-values.yaml", "AZURE_CLIENT_ID", "missing", 29),
        ("broken/env-unknown-identity-type-values.yaml", "IDENTITY_TYPE", "unknown-value", 35),
        ("broken/env-port-invalid-values.yaml", "LISTENING_PORT", "invalid", 33),
        ("broken/env-client-id-not-guid-values.yaml", "AZURE_CLIENT_ID", "format", 37),
    ],
)
def test_sidecar_env_fail(fixture: str, env: str, problem: str, at: int) -> None:
    (f,) = fails(run(fixture), "lint.sidecar-env", "SIDECAR_CONFIG_INVALID")
    assert (f.evidence["env"], f.evidence["problem"], line(f)) == (env, problem, at)


def test_sidecar_env_aad_application_needs_tenant_and_cert() -> None:
    found = fails(run("broken/env-aad-incomplete-values.yaml", "good/entra-cert-spc.yaml"), "lint.sidecar-env",
                  "SIDECAR_CONFIG_INVALID")
    assert sorted(f.evidence["env"] for f in found) == ["AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_TENANT_ID"]
    assert all("required with IDENTITY_TYPE=aadApplication" in f.summary for f in found)
    assert any("- name: AZURE_TENANT_ID" in f.remediation[0] for f in found)


def test_sidecar_env_unquoted_number() -> None:
    (f,) = fails(run("broken/env-port-unquoted-values.yaml"), "lint.sidecar-env", "SIDECAR_CONFIG_INVALID")
    assert "requires a string" in f.summary and "'8081'" in f.summary and line(f) == 33


def test_remote_write_url_pass() -> None:
    r = result(run("good/managed-identity-values.yaml"), "lint.remote-write-url")
    assert r.status == Status.PASS


@pytest.mark.parametrize(
    "fixture, text",
    [
        ("broken/remote-write-wrong-port-values.yaml", "uses port 8080 but the sidecar listens on LISTENING_PORT 8081"),
        ("broken/remote-write-direct-values.yaml", "straight to the ingestion endpoint"),
        ("broken/remote-write-missing-values.yaml", "remoteWrite is not set"),
    ],
)
def test_remote_write_url_fail(fixture: str, text: str) -> None:
    (f,) = fails(run(fixture), "lint.remote-write-url", "REMOTE_WRITE_URL_MISMATCH")
    assert text in f.summary
    assert "url: http://localhost:8081/api/v1/write" in f.remediation[0]


def test_external_label_cluster_pass_and_note() -> None:
    assert result(run("good/managed-identity-values.yaml"), "lint.external-label-cluster").status == Status.PASS
    report = run("broken/external-label-missing-values.yaml")
    r = result(report, "lint.external-label-cluster")
    assert r.status == Status.PASS  # advice only
    (f,) = r.findings
    assert (f.code, f.severity, f.status) == ("EXTERNAL_LABEL_CLUSTER_MISSING", Severity.INFO, Status.PASS)
    assert "externalLabels:\n  cluster:" in f.remediation[0]
