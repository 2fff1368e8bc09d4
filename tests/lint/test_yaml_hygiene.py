"""lint.typographic-quotes, lint.placeholders, lint.manifest-name, lint.duplicate-keys."""

from __future__ import annotations

from promrw_doctor.core.model import Status

from .helpers import fails, line, result, run


def test_typographic_quotes_pass() -> None:
    assert result(run("good/pod-identity-values.yaml"), "lint.typographic-quotes").status == Status.PASS


def test_typographic_quotes_fail_in_helm_values() -> None:
    report = run("broken/typographic-quotes-values.yaml", "seed-binding-fixed.yaml")
    (f,) = fails(report, "lint.typographic-quotes", "YAML_TYPOGRAPHIC_QUOTES")
    assert line(f) == 10 and f.evidence["value"] == "“prom-rw”"
    assert f.remediation == ['aadpodidbinding: "prom-rw"']
    # ... and the label therefore matches no selector.
    assert result(report, "lint.pod-identity-label").status == Status.FAIL


def test_placeholders_pass() -> None:
    assert result(run("good/entra-cert-values.yaml", "good/entra-cert-spc.yaml"), "lint.placeholders").status \
        == Status.PASS


def test_placeholders_fail_with_hints() -> None:
    found = fails(run("seed-pod-identity-values.yaml"), "lint.placeholders", "PLACEHOLDER_NOT_REPLACED")
    by = {f.evidence["placeholders"][0]: f for f in found}
    assert line(by["<INGESTION_URL>"]) == 33
    assert "Metrics ingestion endpoint" in by["<INGESTION_URL>"].remediation[0]
    assert "az identity show" in by["<MANAGED-IDENTITY-CLIENT-ID>"].remediation[0]
    assert "prom-remotewrite-20260226.1" in by["<CONTAINER-IMAGE-VERSION>"].remediation[0]


def test_manifest_name_pass() -> None:
    assert result(run("seed-binding-fixed.yaml"), "lint.manifest-name").status == Status.PASS


def test_manifest_name_fail() -> None:
    (f,) = fails(run("seed-binding.yaml"), "lint.manifest-name", "MANIFEST_NAME_MISSING")
    assert f.remediation == ["metadata:\n  name: demo1-azure-identity-binding"]


def test_manifest_name_skipped_for_helm_values_only() -> None:
    assert result(run("good/managed-identity-values.yaml"), "lint.manifest-name").status == Status.SKIPPED


def test_duplicate_keys_pass() -> None:
    assert result(run("good/managed-identity-values.yaml"), "lint.duplicate-keys").status == Status.PASS


def test_duplicate_keys_fail() -> None:
    (f,) = fails(run("broken/duplicate-keys-values.yaml"), "lint.duplicate-keys", "MANIFEST_DUPLICATE_KEY")
    assert f.evidence == {"path": "prometheus.prometheusSpec.externalLabels", "lines": [6, 8]}
    assert line(f) == 8
