"""The seed documents as users copy them, and their corrected versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from promrw_doctor.core.engine import exit_code_for
from promrw_doctor.core.model import Status

from .helpers import clean, fx, line, problems, result, run


def test_seed_binding_fixture_is_the_published_text() -> None:
    text = Path(fx("seed-binding.yaml")).read_text(encoding="utf-8")
    assert "AzureIdentity: “<AzureIdentityName>” \n" in text
    assert "\nname: demo1-azure-identity-binding \n" in text  # not indented under metadata:
    assert text.startswith("\napiVersion:")


def test_seed_binding_reports_every_defect_with_its_line() -> None:
    report = run("seed-binding.yaml")
    assert exit_code_for(report) == 1
    # Capitalised keys (ignored since aad-pod-identity 1.6.0), lines 8 and 9.
    invalid = problems(report, "POD_IDENTITY_BINDING_INVALID")
    capital = [f for f in invalid if f.evidence.get("defect") == "capitalized-key"]
    assert sorted((f.evidence["key"], line(f)) for f in capital) == [("AzureIdentity", 8), ("Selector", 9)]
    assert all(f.check_id == "lint.binding-keys" for f in capital)
    # Typographic quotes on the same lines.
    quotes = problems(report, "YAML_TYPOGRAPHIC_QUOTES")
    assert sorted(line(f) for f in quotes) == [8, 9]
    assert "“" in quotes[0].evidence["characters"]
    # name: at the top level instead of under metadata: (metadata: is line 5, name: line 6).
    (name,) = problems(report, "MANIFEST_NAME_MISSING")
    assert line(name) == 5 and name.evidence["top_level_name_line"] == 6
    assert "not indented under metadata" in name.summary
    # The corrected binding is offered, with the author's names.
    fix = capital[0].remediation[0]
    assert "metadata:\n  name: demo1-azure-identity-binding" in fix
    assert "spec:\n  azureIdentity: <AzureIdentityName>\n  selector: <AzureIdentityBindingSelector>" in fix
    assert capital[0].remediation[1].startswith("kubectl apply -f ")
    # The spec fields sit at the top level: reported as mis-indentation too.
    (mis,) = problems(report, "MANIFEST_MISINDENTED")
    assert mis.evidence["top_level_keys"] == ["AzureIdentity", "Selector"]
    # Placeholders are defects too.
    assert sorted(line(f) for f in problems(report, "PLACEHOLDER_NOT_REPLACED")) == [8, 9]
    # The identity reference cannot be judged on a binding that binds nothing: one root cause, not two.
    assert result(report, "lint.binding-identity-ref").status == Status.BLOCKED


def test_seed_binding_corrected_is_clean() -> None:
    clean(run("seed-binding-fixed.yaml"))


@pytest.mark.parametrize(
    "files",
    [
        ("seed-binding-fixed.yaml", "good/pod-identity-values.yaml"),
        ("good/managed-identity-values.yaml",),
        ("good/workload-identity-values.yaml",),
        ("good/entra-cert-values.yaml", "good/entra-cert-spc.yaml"),
        ("good/gov-audience-values.yaml",),
        ("good/gov-cloud-values.yaml",),
        ("good/prometheus-cr.yaml",),
    ],
)
def test_corrected_variants_are_clean(files: tuple[str, ...]) -> None:
    clean(run(*files))


def test_seed_pod_identity_values_as_published() -> None:
    report = run("seed-pod-identity-values.yaml", "seed-binding.yaml")
    assert exit_code_for(report) == 1
    mis = problems(report, "MANIFEST_MISINDENTED")
    text = " | ".join(f.summary for f in mis)
    assert "env: at prometheus.prometheusSpec.env" in text
    assert "has no containerPort" in text and "livenessProbe.httpGet" in text and "readinessProbe.httpGet" in text
    # The sidecar without env is a consequence of the mis-indentation, not a separate root cause.
    env = result(report, "lint.sidecar-env").findings[0]
    assert env.code == "SIDECAR_CONFIG_INVALID" and env.consequence_of == "MANIFEST_MISINDENTED"
    assert "SIDECAR_CONFIG_INVALID" not in {rc.code for rc in report.root_causes}
    assert {"<INGESTION_URL>", "<MANAGED-IDENTITY-CLIENT-ID>", "<AzureIdentityBindingSelector>"} <= {
        p for f in problems(report, "PLACEHOLDER_NOT_REPLACED") for p in f.evidence["placeholders"]}


def test_seed_entra_values_as_published() -> None:
    report = run("seed-entra-cert-values.yaml", "seed-spc.yaml")
    assert exit_code_for(report) == 1
    assert {f.evidence["placeholders"][0] for f in problems(report, "PLACEHOLDER_NOT_REPLACED")} >= {
        "<INGESTION_URL>", "<APP-REGISTRATION-CLIENT-ID>", "<TENANT-ID>", "<CERT-NAME>", "<name-of-cert>"}
    (obj,) = [f for f in problems(report, "PLACEHOLDER_NOT_REPLACED") if "<name-of-cert>" in f.evidence["placeholders"]]
    assert obj.location is not None and obj.location.endswith("seed-spc.yaml:16")  # inside the objects block
    assert {f.code for f in problems(report) if f.check_id == "lint.sidecar-image"} == {"SIDECAR_IMAGE_OUTDATED"}
    assert len(problems(report, "MANIFEST_MISINDENTED")) == 2  # probe timings under httpGet
    # The certificate path is still a placeholder: wiring is not judged on it.
    assert result(report, "lint.certificate-wiring").status == Status.SKIPPED
