"""The library entry point promrw_doctor.lint.lint(), the facts, and the lint code catalog."""

from __future__ import annotations

from pathlib import Path

import yaml

from promrw_doctor.core.codes import catalog
from promrw_doctor.core.engine import exit_code_for, run_checks
from promrw_doctor.core.facts import FactStore
from promrw_doctor.core.model import CheckResult, Status
from promrw_doctor.lint import lint, lint_target, load_documents

from .helpers import FIXTURES, fx, registry, result, run

SHARED = ["SIDECAR_MISSING", "SIDECAR_CONFIG_INVALID", "REMOTE_WRITE_URL_MISMATCH", "SIDECAR_IMAGE_KNOWN_BAD",
          "SIDECAR_IMAGE_OUTDATED", "PROMETHEUS_VERSION_UNSUPPORTED", "POD_IDENTITY_LABEL_MISSING",
          "POD_IDENTITY_BINDING_MISMATCH", "POD_IDENTITY_BINDING_INVALID", "POD_IDENTITY_CLIENT_ID_MISMATCH",
          "WORKLOAD_IDENTITY_MISCONFIGURED", "CERT_NOT_MOUNTED", "CERT_NO_PRIVATE_KEY", "INGESTION_URL_INVALID",
          "AUDIENCE_MISMATCH"]


def test_only_skip_and_progress_callback() -> None:
    seen: list[CheckResult] = []
    report = lint([fx("seed-binding.yaml")], registry=registry(), only=["lint.binding-keys"], on_result=seen.append)
    assert [r.check_id for r in report.results] == ["lint.binding-keys"]
    assert [r.check_id for r in seen] == ["lint.binding-keys"]
    report = lint([fx("seed-binding.yaml")], registry=registry(), skip=["POD_IDENTITY_BINDING_INVALID"])
    assert "lint.binding-keys" not in {r.check_id for r in report.results}
    assert all(r.category == "lint" for r in report.results)


def test_stdin_locations() -> None:
    text = Path(fx("seed-binding.yaml")).read_text(encoding="utf-8")
    report = lint(["-"], stdin_text=text, registry=registry())
    locations = {f.location for f in report.problem_findings() if f.code == "YAML_TYPOGRAPHIC_QUOTES"}
    assert locations == {"<stdin>:8", "<stdin>:9"}
    assert report.targets[0].kind == "files" and report.targets[0].description == "<stdin>"


def test_report_context_and_target() -> None:
    report = run("good/entra-cert-values.yaml", "good/entra-cert-spc.yaml")
    assert report.context["variant"] == "aadApplication"
    assert report.targets[0].attributes["documents"] == 2
    docs = load_documents([fx("good/workload-identity-values.yaml")])
    assert lint_target(docs).id.startswith("files:")


def test_generic_engine_run_with_lint_paths_option() -> None:
    reg = registry()
    store = FactStore({"lint_paths": [fx("seed-binding.yaml")]})
    report = run_checks(reg, reg.select(categories=["lint"]), [lint_target(
        load_documents([fx("seed-binding.yaml")]))], store, command="lint")
    assert exit_code_for(report) == 1
    assert result(report, "lint.binding-keys").status == Status.FAIL
    assert store.get("lint.variant") == "podIdentity"


def test_secrets_never_reach_evidence(tmp_path: Path) -> None:
    text = Path(fx("good/managed-identity-values.yaml")).read_text(encoding="utf-8").replace(
        "          - name: CLUSTER\n",
        "          - name: AZURE_CLIENT_SECRET\n            value: “s3cr3t-Value-123”\n          - name: CLUSTER\n")
    p = tmp_path / "v.yaml"
    p.write_text(text, encoding="utf-8")
    report = lint([str(p)], registry=registry())
    dumped = yaml.safe_dump(report.to_dict(exit_code=exit_code_for(report)), allow_unicode=True)
    assert "YAML_TYPOGRAPHIC_QUOTES" in dumped
    assert "s3cr3t-Value-123" not in dumped


def test_shared_codes_live_in_shared_yaml() -> None:
    shared = yaml.safe_load((Path(__file__).resolve().parents[2] / "promrw_doctor/catalog/shared.yaml").read_text())
    assert set(SHARED) <= set(shared)  # later domains may append shared codes


def test_every_lint_code_is_documented() -> None:
    cat = catalog()
    for spec in registry():
        if spec.category != "lint":
            continue
        assert spec.description, spec.id
        for code in spec.codes:
            info = cat.get(code)
            assert info is not None, (spec.id, code)
            assert info.docs.startswith("https://"), code


def test_every_emitted_code_is_declared_and_cataloged() -> None:
    cat = catalog()
    reg = registry()
    fixtures = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.yaml") if "bad-input" not in p.parts)
    for name in fixtures:
        report = run(name)
        for r in report.results:
            spec = reg.get(r.check_id)
            assert spec is not None
            for f in r.findings:
                if f.code == "OK":
                    continue
                assert f.code in cat, (name, f.code)
                assert f.code in spec.codes, (r.check_id, f.code)
                assert f.location and ":" in f.location, (r.check_id, f.code)
