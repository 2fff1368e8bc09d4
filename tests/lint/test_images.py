"""lint.sidecar-image and lint.prometheus-version."""

from __future__ import annotations

from promrw_doctor.core.model import Severity, Status

from .helpers import fails, line, result, run


def test_sidecar_image_pass() -> None:
    r = result(run("good/managed-identity-values.yaml"), "lint.sidecar-image")
    assert r.status == Status.PASS


def test_known_bad_tag() -> None:
    (f,) = fails(run("broken/image-known-bad-values.yaml"), "lint.sidecar-image", "SIDECAR_IMAGE_KNOWN_BAD")
    assert "Azure/prometheus-collector#1372" in f.summary and line(f) == 12
    assert f.docs_url == "https://github.com/Azure/prometheus-collector/issues/1372"
    assert any("prom-remotewrite-20260226.1" in r for r in f.remediation)
    assert any("prom-remotewrite-20250814.1" in r for r in f.remediation)


def test_known_bad_tag_in_a_pod_list() -> None:
    (f,) = fails(run("broken/pod-list-known-bad-image.yaml"), "lint.sidecar-image", "SIDECAR_IMAGE_KNOWN_BAD")
    assert line(f) == 18


def test_legacy_registry_warns() -> None:
    r = result(run("broken/image-legacy-values.yaml"), "lint.sidecar-image")
    assert r.status == Status.WARN
    assert {(f.code, f.severity) for f in r.findings} == {("SIDECAR_IMAGE_OUTDATED", Severity.MEDIUM)}
    assert len(r.findings) == 2  # legacy path + very old tag


def test_latest_tag_warns() -> None:
    r = result(run("broken/image-latest-values.yaml"), "lint.sidecar-image")
    assert r.status == Status.WARN and r.findings[0].code == "SIDECAR_IMAGE_TAG_UNRECOGNIZED"


def test_prometheus_version_pass() -> None:
    r = result(run("good/managed-identity-values.yaml"), "lint.prometheus-version")
    assert r.status == Status.PASS and "2.51.2 >= 2.45.0" in r.summary


def test_prometheus_too_old_for_managed_identity() -> None:
    (f,) = fails(run("broken/prometheus-too-old-values.yaml"), "lint.prometheus-version",
                 "PROMETHEUS_VERSION_UNSUPPORTED")
    assert f.evidence == {"version": "2.44.0", "minimum": "2.45.0", "identity_type": "userAssigned",
                          "source": "prometheus.prometheusSpec.image.tag"}
    assert line(f) == 5


def test_prometheus_too_old_for_entra_application() -> None:
    (f,) = fails(run("broken/prometheus-too-old-entra-values.yaml", "good/entra-cert-spc.yaml"),
                 "lint.prometheus-version", "PROMETHEUS_VERSION_UNSUPPORTED")
    assert f.evidence["minimum"] == "2.48.0" and "Entra application" in f.summary


def test_prometheus_version_from_cr_and_skipped_when_unknown() -> None:
    assert result(run("good/prometheus-cr.yaml"), "lint.prometheus-version").status == Status.PASS
    assert result(run("broken/pod-list-known-bad-image.yaml"), "lint.prometheus-version").status == Status.PASS
    assert result(run("seed-entra-cert-values.yaml"), "lint.prometheus-version").status == Status.SKIPPED
