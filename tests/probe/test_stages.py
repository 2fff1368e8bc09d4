"""Stage classification, what explains each failure, and probe-versus-checks: pure logic."""

from __future__ import annotations

import json

import pytest

from promrw_doctor.core.codes import catalog
from promrw_doctor.core.model import CheckResult, Finding, Severity, Status
from promrw_doctor.forwarder.send import SendError, SendResult
from promrw_doctor.identity.claims import TokenClaims
from promrw_doctor.probe import crosscheck
from promrw_doctor.probe.stages import (
    CANARY_REJECTED,
    EXPLAINS_TOKEN,
    INGESTION,
    INGESTION_UNREACHABLE,
    NETWORK,
    PATH_CODES,
    PROBE_CODES,
    QUERY,
    TOKEN,
    TOKEN_ACQUISITION_FAILED,
    ProbeResult,
    StageResult,
    azure_error,
    explained_by_status,
    stages_from_send,
    status_meaning,
    token_stage_failed,
)
from promrw_doctor.remote_write.canary import build_canary

URL = "https://dce.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-x/streams/s/api/v1/write"
CLAIMS = TokenClaims(aud="https://monitor.azure.com", tid="t", oid="o-1", appid="a-1", exp=1)
FORBIDDEN = ('{"error": {"code": "AuthorizationFailed", "message": "The client \'a-1\' with object id \'o-1\' '
             'does not have authorization to perform action \'Microsoft.Insights/Metrics/Write\'"}}')


def send(**kw: object) -> SendResult:
    base: dict[str, object] = {"ok": False, "url": URL, "identity": "userAssigned (client id a-1)",
                               "claims": CLAIMS, "canary": build_canary("c1")}
    base.update(kw)
    return SendResult(**base)  # type: ignore[arg-type]


def test_accepted_send_makes_three_green_stages() -> None:
    stages = stages_from_send(send(ok=True, status=204, latency_ms=9.0), token_ms=120.0)
    assert [(s.name, s.ok) for s in stages] == [(TOKEN, True), (NETWORK, True), (INGESTION, True)]
    assert stages[0].duration_ms == 120.0 and stages[2].duration_ms == 9.0
    assert stages[2].evidence["status"] == 204 and not any(s.code for s in stages)


@pytest.mark.parametrize(("status", "body", "explains", "meaning"), [
    (403, FORBIDDEN, "ROLE_ASSIGNMENT_MISSING", "Monitoring Metrics Publisher"),
    (403, FORBIDDEN, "ROLE_ASSIGNMENT_PROPAGATING", "propagated"),
    (401, '{"error": {"code": "InvalidAudience", "message": "The audience is invalid"}}', "AUDIENCE_MISMATCH",
     "audience"),
    (404, '{"error": {"code": "DataCollectionRuleNotFound", "message": "not found"}}', "DCR_NOT_FOUND",
     "DCR immutable id"),
    (429, '{"error": {"code": "TooManyRequests", "message": "slow down"}}', "INGESTION_THROTTLED", "throttled"),
    (413, "too large", "INGESTION_REJECTED", "too large"),
])
def test_rejections_name_status_azure_code_meaning_and_explanations(status: int, body: str, explains: str,
                                                                   meaning: str) -> None:
    stages = stages_from_send(send(status=status, latency_ms=40.0, error=SendError(
        "http", f"upstream answered {status}", status=status, body_excerpt=body)), token_ms=5.0)
    ing = stages[2]
    assert (stages[0].ok, stages[1].ok, ing.ok, ing.code) == (True, True, False, CANARY_REJECTED)
    assert ing.evidence["status"] == status and ing.duration_ms == 40.0
    assert meaning in ing.evidence["meaning"] and meaning in ing.detail
    assert explains in ing.explained_by
    code, _ = azure_error(body)
    if code:
        assert ing.evidence["azure_error_code"] == code and code in ing.detail


def test_as_me_rejections_are_not_explained_by_the_sidecars_identity() -> None:
    err = SendError("http", "403", status=403, body_excerpt=FORBIDDEN)
    ing = stages_from_send(send(status=403, error=err), token_ms=1.0, as_me=True)[2]
    assert "ROLE_ASSIGNMENT_MISSING" not in ing.explained_by
    err401 = SendError("http", "401", status=401, body_excerpt='{"error": {"code": "InvalidAudience"}}')
    ing401 = stages_from_send(send(status=401, error=err401), token_ms=1.0, as_me=True)[2]
    assert "AUDIENCE_MISMATCH" in ing401.explained_by and "CERT_EXPIRED" not in ing401.explained_by


@pytest.mark.parametrize(("kind", "words"), [("dns", "DNS"), ("tls", "TLS"), ("connect", "TCP connection"),
                                            ("timeout", "timeout"), ("reset", "reset")])
def test_network_failures_say_which_layer(kind: str, words: str) -> None:
    stages = stages_from_send(send(latency_ms=3.0, error=SendError("network", "boom", network=kind)),
                              token_ms=2.0)
    net = stages[1]
    assert (net.ok, net.code, net.evidence["network"]) == (False, INGESTION_UNREACHABLE, kind)
    assert words in net.detail and stages[2].ok is None
    assert "INGESTION_ENDPOINT_UNREACHABLE" in net.explained_by


def test_token_failure_carries_aadsts_meaning_and_identity_explanations() -> None:
    cause = "AADSTS700027: Client assertion failed signature validation. [Reason - The key used is expired.]"
    stages = stages_from_send(send(error=SendError("token", f"aadApplication (client id a-1): {cause}",
                                                   token_category="authentication"), claims=None), token_ms=80.0)
    tok = stages[0]
    assert (tok.ok, tok.code, tok.evidence["aadsts"]) == (False, TOKEN_ACQUISITION_FAILED, 700027)
    assert tok.evidence["aadsts_meaning"] and "CERT_EXPIRED" in tok.explained_by
    assert "NMI_UNHEALTHY" in tok.explained_by and "SIDECAR_CONFIG_INVALID" in tok.explained_by
    assert [s.ok for s in stages[1:]] == [None, None]
    assert token_stage_failed("me", "no credential", "unavailable", 1.0, as_me=True).explained_by == ()


def test_azure_error_reads_truncated_bodies() -> None:
    assert azure_error('{"error": {"code": "AuthorizationFailed", "message": "The client ... scope \'/sub') \
        == ("AuthorizationFailed", "The client ... scope '/sub")
    assert azure_error("<html>nope</html>") == (None, None)
    assert azure_error(None) == (None, None)


def test_status_meanings() -> None:
    assert "audience" in status_meaning(401, "InvalidAudience")
    assert "expired" in status_meaning(401, "TokenExpired")
    assert "tenant" in status_meaning(401, "InvalidTenant")
    assert "transient" in status_meaning(503)
    assert status_meaning(None) == "no HTTP answer"
    assert explained_by_status(418) == ("INGESTION_REJECTED",) and explained_by_status(503) == ()


def test_probe_codes_are_in_the_catalog_with_their_explain_text() -> None:
    cat = catalog()
    for code in (*PROBE_CODES, "PRODUCTION_PATH_FAILING_CANARY_OK", "PROBE_CONTRADICTS_CHECKS"):
        info = cat[code]
        assert info.what and info.why and info.fix, code


def test_evidence_never_holds_a_token() -> None:
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"
    r = ProbeResult(stages=[StageResult(TOKEN, True, 1.0), StageResult(QUERY, True, 2.0)], series="s", cluster="c",
                    nonce=4503599627370497, claims={"aud": "x", "oid": "o"})
    doc = json.dumps(r.evidence())
    assert token not in doc and "eyJ" not in doc
    assert r.delivered and r.failed is None and r.timings()["total"] == 0.0


# ------------------------------------------------------------------------------ probe vs checks
def result(check_id: str, status: Status, *findings: Finding, target: str = "ns/p") -> CheckResult:
    return CheckResult(check_id=check_id, title=check_id, category="azure", status=status,
                       severity=Severity.HIGH, target=target, findings=list(findings))


def fail(code: str) -> Finding:
    return Finding(code=code, status=Status.FAIL, summary=f"{code} says so")


def probe_pass(as_me: bool) -> CheckResult:
    return result(crosscheck.PROBE_CHECK, Status.PASS,
                  Finding(code="OK", status=Status.PASS, summary="delivered", evidence={"as_me": as_me}))


def test_delivered_canary_contradicting_a_role_check_believe_the_probe_unless_as_me() -> None:
    role = result("azure.role-assignment", Status.FAIL, fail("ROLE_ASSIGNMENT_MISSING"))
    mine = crosscheck.evaluate([probe_pass(False), role], "ns/p", None)
    assert mine is not None and mine.status == Status.WARN
    f = mine.findings[0]
    assert f.code == "PROBE_CONTRADICTS_CHECKS" and f.evidence["believe"] == "probe"
    assert "believe the probe" in f.summary and "azure.role-assignment" in f.summary
    theirs = crosscheck.evaluate([probe_pass(True), role], "ns/p", None)
    assert theirs is not None and theirs.findings[0].evidence["believe"] == "check"
    assert "--as-me" in theirs.findings[0].summary


def test_throttling_and_sidecar_process_findings_are_not_contradicted_the_naive_way() -> None:
    throttled = result("azure.workspace-quota", Status.FAIL, fail("INGESTION_THROTTLED"))
    out = crosscheck.evaluate([probe_pass(False), throttled], "ns/p", None)
    assert out is not None and out.findings[0].evidence["believe"] == "check"
    crash = result("kubernetes.sidecar-config", Status.FAIL, fail("SIDECAR_CONFIG_INVALID"))
    assert "SIDECAR_CONFIG_INVALID" in EXPLAINS_TOKEN and "SIDECAR_CONFIG_INVALID" not in PATH_CODES
    agree = crosscheck.evaluate([probe_pass(False), crash], "ns/p", None)
    assert agree is not None and agree.status == Status.PASS


def test_no_verdict_without_delivery_or_without_other_checks() -> None:
    failed = result(crosscheck.PROBE_CHECK, Status.FAIL, fail(CANARY_REJECTED))
    role = result("azure.role-assignment", Status.FAIL, fail("ROLE_ASSIGNMENT_MISSING"))
    out = crosscheck.evaluate([failed, role], "ns/p", None)
    assert out is not None and out.status == Status.SKIPPED and not out.findings
    alone = crosscheck.evaluate([probe_pass(False)], "ns/p", None)
    assert alone is not None and alone.status == Status.SKIPPED and "--with-checks" in alone.summary
    assert crosscheck.evaluate([role], "ns/p", None) is None
