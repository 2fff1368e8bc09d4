"""lint.ingestion-url and lint.audience."""

from __future__ import annotations

import pytest

from promrw_doctor.core.engine import exit_code_for
from promrw_doctor.core.model import Status
from promrw_doctor.domain.clouds import profile_from_dict

from .helpers import fails, fx, line, registry, result, run


def test_ingestion_url_pass() -> None:
    r = result(run("good/managed-identity-values.yaml"), "lint.ingestion-url")
    assert r.status == Status.PASS


def test_ingestion_url_query_endpoint() -> None:
    found = fails(run("broken/ingestion-url-query-endpoint-values.yaml"), "lint.ingestion-url", "INGESTION_URL_INVALID")
    parts = {f.evidence["part"] for f in found}
    assert parts == {"host", "path", "api-version"}
    assert any("query endpoint" in f.summary for f in found)
    assert all(line(f) == 31 for f in found)


def test_ingestion_url_dcr_name_and_missing_api_version() -> None:
    found = fails(run("broken/ingestion-url-bad-dcr-values.yaml"), "lint.ingestion-url", "INGESTION_URL_INVALID")
    assert {f.evidence["part"] for f in found} == {"dcr", "api-version"}
    fix = found[0].remediation[0]
    assert "amw-prod-x1y2.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/<DCR immutable id>" in fix
    assert "az monitor data-collection rule show" in found[0].remediation[1]


def test_ingestion_url_unknown_api_version_is_a_warning() -> None:
    report = run("broken/ingestion-url-unknown-api-version-values.yaml")
    r = result(report, "lint.ingestion-url")
    assert r.status == Status.WARN and r.findings[0].code == "INGESTION_URL_INVALID"
    assert exit_code_for(report) == 0 and exit_code_for(report, "warn") == 1


def test_ingestion_url_placeholder_is_left_to_lint_placeholders() -> None:
    report = run("seed-entra-cert-values.yaml", "seed-spc.yaml")
    assert result(report, "lint.ingestion-url").status == Status.SKIPPED


def test_custom_cloud_profile_from_options(tmp_path: object) -> None:
    from pathlib import Path

    lab = profile_from_dict({
        "name": "lab", "authority_host": "https://127.0.0.1:1", "arm_endpoint": "https://127.0.0.1:2",
        "arm_audience": "https://management.lab", "graph_endpoint": "https://127.0.0.1:3",
        "keyvault_suffix": ".vault.lab", "ingestion_audience": "https://monitor.azure.com",
        "query_audience": "https://q.lab", "ingestion_host_suffixes": ["127.0.0.1"],
    })
    text = Path(fx("good/managed-identity-values.yaml")).read_text(encoding="utf-8").replace(
        "https://amw-prod-x1y2.eastus-1.metrics.ingest.monitor.azure.com", "https://127.0.0.1:8443")
    p = Path(str(tmp_path)) / "lab-values.yaml"
    p.write_text(text)
    from promrw_doctor.lint import lint

    assert result(lint([str(p)], registry=registry()), "lint.ingestion-url").status == Status.FAIL
    report = lint([str(p)], registry=registry(), options={"extra_clouds": (lab,)})
    assert result(report, "lint.ingestion-url").status == Status.PASS
    assert result(report, "lint.audience").status == Status.PASS


@pytest.mark.parametrize("fixture", ["good/managed-identity-values.yaml", "good/gov-audience-values.yaml",
                                     "good/gov-cloud-values.yaml"])
def test_audience_pass(fixture: str) -> None:
    assert result(run(fixture), "lint.audience").status == Status.PASS


def test_gov_host_without_audience_fails() -> None:
    (f,) = fails(run("broken/gov-no-audience-values.yaml"), "lint.audience", "AUDIENCE_MISMATCH")
    assert f.evidence["cloud"] == "usgov" and f.evidence["INGESTION_AAD_AUDIENCE"] is None
    assert "value: https://monitor.azure.us/.default" in f.remediation[0]


def test_audience_without_default_suffix_is_a_warning() -> None:
    report = run("broken/gov-audience-no-default-values.yaml")
    r = result(report, "lint.audience")
    assert r.status == Status.WARN
    (f,) = r.findings
    assert f.code == "AUDIENCE_MISMATCH" and "/.default" in f.summary and line(f) == 39
