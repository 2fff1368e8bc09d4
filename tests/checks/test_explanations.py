"""The one write-path table (checks/kubernetes/_common.py) against the catalog and the checks.

Every list of codes a check puts in ``explained_by`` for "the write path is broken" derives
from ``WRITE_PATH_CAUSES``. These tests keep that table honest: only catalogued codes that
a check really emits, every live cluster/identity/Azure code classified (cause or not, with
the reason), and the engine really turning the publishing failure into a consequence.
"""

from __future__ import annotations

import pytest
from promrw_doctor.checks.azure.roles import CLIENT_ID_ROOTS
from promrw_doctor.checks.identity.nmi import NMI_LOG_ROOTS
from promrw_doctor.checks.identity.token_acquisition import TOKEN_ROOTS
from promrw_doctor.checks.kubernetes import _common as common
from promrw_doctor.checks.pipeline.prometheus_remote_write import PROMETHEUS_ROOTS
from promrw_doctor.checks.pipeline.sidecar_publishing import sidecar_publishing

from promrw_doctor.core import Status, load_registry
from promrw_doctor.core.codes import catalog
from promrw_doctor.core.engine import rank_root_causes
from promrw_doctor.core.model import CheckResult, Finding, Severity
from promrw_doctor.core.registry import Registry

from .kube_fixtures import TARGET, run_check
from .test_pipeline import sidecar_log, summary

LIVE_CATEGORIES = ("kubernetes", "identity", "azure")


def live_codes() -> dict[str, list[str]]:
    """Code -> the live (cluster/identity/Azure) checks that declare it."""
    out: dict[str, list[str]] = {}
    for spec in load_registry():
        if str(spec.category) in LIVE_CATEGORIES:
            for code in spec.codes:
                out.setdefault(code, []).append(spec.id)
    return out


def test_table_names_only_catalogued_codes_that_a_live_check_emits() -> None:
    codes = live_codes()
    table = set(common.WRITE_PATH_CAUSES)
    assert table <= set(catalog()), table - set(catalog())
    # TOKEN_ACQUISITION_FAILED is emitted by identity.sidecar-token (a live identity check) too.
    assert not table - set(codes), f"no live check emits {sorted(table - set(codes))}"
    assert set(common.NOT_WRITE_PATH_CAUSES) <= set(catalog())
    assert not table & set(common.NOT_WRITE_PATH_CAUSES)
    assert all(why.strip() for why in common.NOT_WRITE_PATH_CAUSES.values())


def test_every_live_code_is_classified() -> None:
    """A new kubernetes/identity/azure code must be placed in the table or named as no cause (with why)."""
    classified = set(common.WRITE_PATH_CAUSES) | set(common.NOT_WRITE_PATH_CAUSES)
    missing = {code: ids for code, ids in live_codes().items() if code not in classified}
    assert not missing, f"classify these in checks/kubernetes/_common.py: {missing}"


@pytest.mark.parametrize("name, codes", [
    ("SIDECAR_ROOTS", common.SIDECAR_ROOTS), ("IDENTITY_ROOTS", common.IDENTITY_ROOTS),
    ("AZURE_ROOTS", common.AZURE_ROOTS), ("PUBLISH_ROOTS", common.PUBLISH_ROOTS),
    ("STARTUP_ROOTS", common.STARTUP_ROOTS), ("TOKEN_ROOTS", TOKEN_ROOTS), ("NMI_LOG_ROOTS", NMI_LOG_ROOTS),
    ("PROMETHEUS_ROOTS", PROMETHEUS_ROOTS), ("CLIENT_ID_ROOTS", CLIENT_ID_ROOTS),
])
def test_explanation_lists_are_catalogued_and_unique(name: str, codes: tuple[str, ...]) -> None:
    assert codes, name
    assert set(codes) <= set(catalog()), f"{name}: {set(codes) - set(catalog())}"
    assert len(codes) == len(set(codes)), f"{name} repeats a code"


def test_lists_derive_from_the_table() -> None:
    assert set(common.PUBLISH_ROOTS) == set(common.WRITE_PATH_CAUSES)
    assert set(common.STARTUP_ROOTS) == set(common.SIDECAR_ROOTS) | set(common.IDENTITY_ROOTS)
    assert "REMOTE_WRITE_URL_MISMATCH" not in common.STARTUP_ROOTS  # Prometheus's URL cannot stop the sidecar
    assert "DCE_MISMATCH" in common.AZURE_ROOTS and "DCE_MISMATCH" not in common.STARTUP_ROOTS
    assert "TOKEN_ACQUISITION_FAILED" not in TOKEN_ROOTS  # never its own explanation
    assert set(TOKEN_ROOTS) - set(common.IDENTITY_ROOTS) == {"AUDIENCE_MISMATCH", "SIDECAR_CONFIG_INVALID"}
    assert set(NMI_LOG_ROOTS) == {c for c in common.IDENTITY_ROOTS if c.startswith("POD_IDENTITY_")}


# ------------------------------------------------------------------ the engine with the real publishing check


def publishing_failure() -> CheckResult:
    """The real check on a log that shows nothing published and 403s."""
    log = sidecar_log(summary(-120, 120, 0), summary(-60, 121, 0))
    result = run_check(sidecar_publishing, {"k8s.sidecar_logs": log})
    assert result.status == Status.FAIL and result.findings[0].code == "PUBLISH_FAILING"
    return result


def problem(check_id: str, code: str, status: Status = Status.FAIL,
            explained_by: tuple[str, ...] = ()) -> CheckResult:
    f = Finding(code=code, status=status, summary=f"{code} here", severity=Severity.HIGH, explained_by=explained_by,
                check_id=check_id)
    return CheckResult(check_id=check_id, title=check_id, category=check_id.split(".")[0], status=status,
                       severity=Severity.HIGH, target=TARGET.id, summary=f.summary, findings=[f])


@pytest.mark.parametrize("code", ["DCE_MISMATCH", "POD_IDENTITY_ROLES_MISSING", "CERT_NOT_YET_VALID",
                                  "TOKEN_CLAIMS_UNEXPECTED", "IDENTITY_NOT_FOUND", "INGESTION_THROTTLED",
                                  "TOKEN_ACQUISITION_FAILED"])
def test_publish_failing_is_a_consequence_of_azure_and_identity_causes(code: str) -> None:
    publishing = publishing_failure()
    causes = rank_root_causes(Registry([]), [problem("x.cause", code), publishing])
    assert [rc.code for rc in causes] == [code]
    assert publishing.findings[0].consequence_of == code
    assert causes[0].consequences == ["pipeline.sidecar-publishing"]


@pytest.mark.parametrize("code", ["QUOTA_NEAR_LIMIT", "CERT_EXPIRING_SOON", "QUERY_ACCESS_MISSING",
                                  "SIDECAR_IMAGE_OUTDATED"])
def test_warnings_that_do_not_break_writes_leave_publishing_a_root_cause(code: str) -> None:
    publishing = publishing_failure()
    causes = rank_root_causes(Registry([]), [problem("x.warning", code, Status.WARN), publishing])
    assert {rc.code for rc in causes} == {code, "PUBLISH_FAILING"}
    assert publishing.findings[0].consequence_of is None


def test_chain_collapses_onto_the_certificate() -> None:
    publishing = publishing_failure()
    token = problem("identity.sidecar-token", "TOKEN_ACQUISITION_FAILED", explained_by=TOKEN_ROOTS)
    cert = problem("identity.certificate-validity", "CERT_NOT_YET_VALID")
    causes = rank_root_causes(Registry([]), [publishing, token, cert])
    assert [rc.code for rc in causes] == ["CERT_NOT_YET_VALID"]
    assert token.findings[0].consequence_of == "CERT_NOT_YET_VALID"
    assert publishing.findings[0].consequence_of in ("CERT_NOT_YET_VALID", "TOKEN_ACQUISITION_FAILED")
