"""JUnit XML: parses, counts add up, each status maps to what CI systems expect."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from report_samples import TARGET, build_full_report

from promrw_doctor.core.model import CheckResult, Report, Severity, Status, Target
from promrw_doctor.reports import render


def parse(report: Report) -> ET.Element:
    text = render(report, "junit", exit_code=1)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')
    return ET.fromstring(text.encode("utf-8"))


def case(root: ET.Element, check_id: str) -> ET.Element:
    found = [c for c in root.iter("testcase") if c.get("name", "").startswith(f"{check_id}: ")]
    assert len(found) == 1, check_id
    return found[0]


def test_root_and_suite_counts(full_report: Report) -> None:
    root = parse(full_report)
    expected = {"tests": "11", "failures": "2", "errors": "2", "skipped": "3"}
    assert {k: root.get(k) for k in expected} == expected
    (suite,) = root.findall("testsuite")
    assert {k: suite.get(k) for k in expected} == expected
    assert suite.get("name") == TARGET
    assert suite.get("timestamp") == "2024-05-01T03:12:09"
    assert len(suite.findall("testcase")) == 11
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["command"] == "check" and props["exit_code"] == "1" and props["target_kind"] == "pod"


def test_testcase_attributes(full_report: Report) -> None:
    c = case(parse(full_report), "azure.dcr-exists")
    assert c.get("classname") == "promrw_doctor.azure"
    assert c.get("name") == "azure.dcr-exists: Data collection rule exists"
    assert c.get("time") == "0.250"
    assert list(c) == []


def test_fail_is_a_failure_with_code_evidence_and_fix(full_report: Report) -> None:
    c = case(parse(full_report), "identity.role-assignment")
    (failure,) = c.findall("failure")
    assert failure.get("type") == "IDENTITY_ROLE_MISSING"
    assert failure.get("message", "").startswith("The user-assigned managed identity")
    body = failure.text or ""
    assert "client_id: 5f1c2d3e-0000-4a6b-9c8d-1234567890ab" in body
    assert "fix:\n  az role assignment create" in body
    assert "docs: https://learn.microsoft.com/" in body


def test_error_and_unknown_are_errors(full_report: Report) -> None:
    root = parse(full_report)
    (err,) = case(root, "identity.token-claims").findall("error")
    assert err.get("type") == "error" and "KeyError" in (err.get("message") or "")
    (unknown,) = case(root, "kubernetes.pod-list").findall("error")
    assert unknown.get("type") == "unknown"
    assert "list pods in namespace monitoring" in (unknown.get("message") or "")


def test_blocked_and_skipped_are_skipped(full_report: Report) -> None:
    root = parse(full_report)
    (blocked,) = case(root, "pipeline.write-probe").findall("skipped")
    assert blocked.get("message") == "blocked by identity.role-assignment"
    (skipped,) = case(root, "identity.workload-federation").findall("skipped")
    assert "applies to workloadIdentity" in (skipped.get("message") or "")


def test_warn_passes_with_system_out(full_report: Report) -> None:
    c = case(parse(full_report), "kubernetes.sidecar-image")
    assert c.find("failure") is None and c.find("error") is None and c.find("skipped") is None
    out = c.findtext("system-out") or ""
    assert out.startswith("WARN SIDECAR_IMAGE_UNPINNED (medium)")


def test_xml_special_characters_round_trip(full_report: Report) -> None:
    c = case(parse(full_report), "kubernetes.sidecar-image")
    assert c.get("name") == 'kubernetes.sidecar-image: Sidecar image <tag> & "pinning"'
    out = c.findtext("system-out") or ""
    assert "<6.x> & \"quote\" 'apos'" in out
    assert "weird\\x1bkey" in out and "\\x07" in out  # control characters escaped, document still valid


def test_one_suite_per_target() -> None:
    report = build_full_report()
    report.targets.append(Target(id="monitoring/prometheus-prometheus-1", kind="pod"))
    report.results.append(CheckResult(check_id="kubernetes.sidecar-present", title="Sidecar present",
                                      category="kubernetes", status=Status.FAIL, severity=Severity.HIGH,
                                      target="monitoring/prometheus-prometheus-1", summary="no sidecar"))
    root = parse(report)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [TARGET, "monitoring/prometheus-prometheus-1"]
    assert suites[1].get("tests") == "1" and suites[1].get("failures") == "1"
    assert root.get("tests") == "12" and root.get("failures") == "3"
    (failure,) = suites[1].iter("failure")
    assert failure.get("type") == "FAIL" and failure.text == "no sidecar"


def test_clean_run(clean_report: Report) -> None:
    root = ET.fromstring(render(clean_report, "junit"))
    counts = [root.get(k) for k in ("tests", "failures", "errors", "skipped")]
    assert counts == ["1", "0", "0", "0"]
