"""lint.certificate-wiring and lint.certificate-object-type."""

from __future__ import annotations

import pytest

from promrw_doctor.core.model import Severity, Status

from .helpers import fails, line, result, run

VALUES = "good/entra-cert-values.yaml"
SPC = "good/entra-cert-spc.yaml"


def test_wiring_pass() -> None:
    report = run(VALUES, SPC)
    r = result(report, "lint.certificate-wiring")
    assert r.status == Status.PASS
    assert r.findings[0].evidence == {"certificate_path": "/mnt/secrets-store/prom-rw-cert",
                                      "secretProviderClass": "azure-kvname-user-msi", "object": "prom-rw-cert"}
    assert result(report, "lint.certificate-object-type").status == Status.PASS


@pytest.mark.parametrize("files, text, at", [
    (("broken/cert-path-outside-mount-values.yaml", SPC), "is not under any volumeMount", 52),
    (("broken/cert-volume-missing-values.yaml", SPC), "has no volume of that name", 15),
    ((VALUES, "broken/cert-spc-name-mismatch-spc.yaml"), "names SecretProviderClass 'azure-kvname-user-msi'", 17),
    ((VALUES, "broken/cert-object-missing-spc.yaml"),
     "mounts prom-cert under /mnt/secrets-store, not 'prom-rw-cert'", 53),
])
def test_wiring_not_mounted(files: tuple[str, str], text: str, at: int) -> None:
    report = run(*files)
    (f,) = fails(report, "lint.certificate-wiring", "CERT_NOT_MOUNTED")
    assert text in f.summary and line(f) == at
    assert any("secretProviderClass: " in r for r in f.remediation)
    assert result(report, "lint.certificate-object-type").status == Status.BLOCKED


def test_wiring_objects_unreadable() -> None:
    (f,) = fails(run(VALUES, "broken/cert-objects-invalid-spc.yaml"), "lint.certificate-wiring",
                 "SECRET_PROVIDER_CLASS_INVALID")
    assert "no 'array:' list" in f.summary


def test_wiring_spc_not_given_is_a_warning() -> None:
    report = run(VALUES)
    r = result(report, "lint.certificate-wiring")
    assert r.status == Status.WARN
    (f,) = r.findings
    assert f.code == "SECRET_PROVIDER_CLASS_NOT_GIVEN" and f.severity == Severity.LOW
    assert "kubectl get secretproviderclass azure-kvname-user-msi -n <namespace> -o yaml" in f.remediation


def test_object_type_cert_has_no_private_key() -> None:
    (f,) = fails(run(VALUES, "broken/cert-objecttype-cert-spc.yaml"), "lint.certificate-object-type",
                 "CERT_NO_PRIVATE_KEY")
    assert f.evidence["objectType"] == "cert" and line(f) == 19
    assert "objectType: secret" in f.remediation[0]


def test_not_applicable_to_managed_identity() -> None:
    report = run("good/managed-identity-values.yaml")
    assert result(report, "lint.certificate-wiring").status == Status.SKIPPED
    assert result(report, "lint.certificate-object-type").status == Status.SKIPPED
