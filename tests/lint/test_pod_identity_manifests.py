"""lint.binding-keys, lint.binding-identity-ref, lint.azure-identity."""

from __future__ import annotations

from promrw_doctor.core.model import Severity, Status

from .helpers import fails, line, result, run


def test_binding_keys_pass_on_corrected_binding() -> None:
    r = result(run("seed-binding-fixed.yaml"), "lint.binding-keys")
    assert r.status == Status.PASS


def test_binding_keys_fail_on_capitalised_keys() -> None:
    found = fails(run("seed-binding.yaml"), "lint.binding-keys", "POD_IDENTITY_BINDING_INVALID")
    assert {f.evidence["expected"] for f in found} == {"spec.azureIdentity", "spec.selector"}


def test_binding_keys_fail_on_lowercase_keys_outside_spec() -> None:
    report = run("broken/binding-lowercase-misindented.yaml")
    (f,) = fails(report, "lint.binding-keys", "MANIFEST_MISINDENTED")
    assert f.evidence["top_level_keys"] == ["azureIdentity", "selector"] and line(f) == 8
    assert "spec:\n  azureIdentity: prom-rw-mi\n  selector: prom-rw" in f.remediation[0]


def test_binding_identity_ref_pass() -> None:
    r = result(run("seed-binding-fixed.yaml"), "lint.binding-identity-ref")
    assert r.status == Status.PASS and "prom-rw-mi" in r.summary


def test_binding_identity_ref_fails_on_unknown_identity() -> None:
    (f,) = fails(run("broken/binding-ref-unknown.yaml"), "lint.binding-identity-ref", "POD_IDENTITY_BINDING_INVALID")
    assert f.evidence == {"azureIdentity": "prom-rw-identity", "identities_given": ["prom-rw-mi"]}
    assert line(f) == 18
    assert "azureIdentity: prom-rw-mi" in f.remediation[0]


def test_binding_identity_ref_warns_when_identity_not_given() -> None:
    report = run("broken/binding-without-identity.yaml")
    r = result(report, "lint.binding-identity-ref")
    assert r.status == Status.WARN
    (f,) = r.findings
    assert f.code == "AZURE_IDENTITY_NOT_GIVEN" and f.severity == Severity.LOW
    assert "kubectl get azureidentity prom-rw-mi -n monitoring" in f.remediation


def test_azure_identity_pass() -> None:
    assert result(run("seed-binding-fixed.yaml"), "lint.azure-identity").status == Status.PASS


def test_azure_identity_fails() -> None:
    found = fails(run("broken/azure-identity-invalid.yaml"), "lint.azure-identity", "AZURE_IDENTITY_INVALID")
    got = sorted((f.evidence["field"], f.evidence["problem"], line(f)) for f in found)
    assert got == [
        ("clientID", "format", 20), ("clientID", "miscased-key", 10),
        ("resourceID", "format", 19), ("resourceID", "miscased-key", 9),
    ]
    assert any("--query '{resourceID:id, clientID:clientId}'" in r for r in found[0].remediation)
