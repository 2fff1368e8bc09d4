"""The ``prometheus`` report format, and the alerting rules in deploy/alerts.yaml that read it.

The output is checked three ways: a strict parser written here (the exposition grammar,
plus the rules a textfile collector enforces that ``promtool check metrics`` does not,
such as no repeated series), Prometheus's own ``promtool check metrics``, and
``promtool test rules``, which runs the shipped alerts on series taken from a rendering,
so a renamed metric or label breaks a test rather than an on-call rotation.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from report_samples import JWT, LONG_SUMMARY, SECRET_FRAGMENTS, TARGET, build_clean_report, build_full_report

from promrw_doctor.cli import options as cli_options
from promrw_doctor.core.engine import exit_code_for
from promrw_doctor.core.errors import InputError
from promrw_doctor.core.model import CheckResult, Finding, Report, RootCause, Severity, Status, Target
from promrw_doctor.reports import FORMATS, render
from promrw_doctor.reports.prometheus import STATUSES, label_value, render_document, render_prometheus

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "alerts.yaml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None,
                                    reason="promtool not installed (Debian: apt-get install prometheus)")

FAMILIES = (
    "promrw_doctor_info",
    "promrw_doctor_run_timestamp_seconds",
    "promrw_doctor_run_duration_seconds",
    "promrw_doctor_run_exit_code",
    "promrw_doctor_run_success",
    "promrw_doctor_last_success_timestamp_seconds",
    "promrw_doctor_check_status",
    "promrw_doctor_check_duration_seconds",
    "promrw_doctor_finding",
    "promrw_doctor_root_causes",
)


# ---------------------------------------------------------------------- a strict parser


@dataclass
class Family:
    name: str
    help: str = ""
    type: str = ""
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def values(self, **match: str) -> list[float]:
        return [v for labels, v in self.samples if all(labels.get(k) == m for k, m in match.items())]


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_labels(text: str, pos: int, line: str) -> tuple[dict[str, str], int]:
    """Labels from ``{`` at ``pos`` to the matching ``}``; returns them and the index after ``}``."""
    labels: dict[str, str] = {}
    pos += 1
    while text[pos] != "}":
        m = _LABEL_NAME.match(text, pos)
        assert m, f"bad label name in {line!r}"
        name = m.group()
        assert name not in labels, f"repeated label {name} in {line!r}"
        pos = m.end()
        assert text[pos:pos + 2] == '="', f"expected =\" after {name} in {line!r}"
        pos += 2
        value = []
        while text[pos] != '"':
            ch = text[pos]
            assert ch != "\n"
            if ch == "\\":
                nxt = text[pos + 1]
                assert nxt in _UNESCAPE, f"invalid escape \\{nxt} in {line!r}"
                value.append(_UNESCAPE[nxt])
                pos += 2
            else:
                value.append(ch)
                pos += 1
        labels[name] = "".join(value)
        pos += 1
        if text[pos] == ",":
            pos += 1
    return labels, pos + 1


def parse(text: str) -> dict[str, Family]:
    """Families by name, asserting what node-exporter's textfile collector and the Pushgateway need.

    HELP and TYPE before a family's samples, each family contiguous and declared once, valid
    names, escapes and values, no sample timestamps, no repeated series, UTF-8 only.
    """
    text.encode("utf-8")
    assert text.endswith("\n") and not text.endswith("\n\n")
    families: dict[str, Family] = {}
    current: Family | None = None
    seen_series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert _NAME.fullmatch(name) and name not in families, line
            current = families[name] = Family(name, help=help_text)
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert current is not None and current.name == name and not current.type, line
            assert kind in ("gauge", "counter", "untyped"), line
            current.type = kind
            continue
        assert not line.startswith("#") and line.strip() == line and line, f"unexpected line {line!r}"
        m = _NAME.match(line)
        assert m, line
        name = m.group()
        assert current is not None and name == current.name and current.type, f"sample outside its family: {line}"
        pos = m.end()
        labels: dict[str, str] = {}
        if line[pos] == "{":
            labels, pos = _parse_labels(line, pos, line)
        rest = line[pos:]
        assert rest.startswith(" ") and len(rest.split()) == 1, f"timestamp or junk after value: {line!r}"
        value = float(rest.strip())
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen_series, f"repeated series {line!r}"
        seen_series.add(key)
        current.samples.append((labels, value))
    for fam in families.values():
        assert fam.type, f"{fam.name} has no TYPE"
    return families


def promtool_check(text: str) -> None:
    """``promtool check metrics``: the client_golang text parser and promlint (exit 0 = no problems)."""
    assert PROMTOOL is not None
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------- samples


def _result(check_id: str, status: Status, target: str = TARGET, **kw: Any) -> CheckResult:
    return CheckResult(check_id=check_id, title=check_id, category=check_id.split(".", 1)[0], status=status,
                       severity=Severity.HIGH, target=target, **kw)


def incomplete_report() -> Report:
    """Nothing fails, one check could not look: exit 3."""
    return Report(command="run", targets=[Target(id=TARGET, kind="pod")],
                  results=[_result("azure.dcr-exists", Status.PASS),
                           _result("kubernetes.pod-list", Status.UNKNOWN, needs="list pods")],
                  root_causes=[], started_at="2024-05-01T03:12:09Z", duration_s=1.5, tool_version="0.1.0")


def hostile_report() -> Report:
    """Ids, codes and targets with every character the exposition format must escape, plus secrets."""
    target = 'ns/"quoted"\\back\nline\x1bterm'
    check_id = 'kubernetes.we"ird\\id\nx'
    finding = Finding(code='CODE_"Q"\\', status=Status.FAIL, severity=Severity.HIGH, summary="s",
                      check_id=check_id)
    return Report(
        command="run",
        targets=[Target(id=target, kind="pod")],
        results=[_result(check_id, Status.FAIL, target=target, findings=[finding]),
                 _result(f"identity.token-{JWT}", Status.PASS, target=f"Authorization: Bearer {JWT}")],
        root_causes=[RootCause(target=target, check_id=check_id, code=finding.code, status=Status.FAIL,
                               severity=Severity.HIGH, summary="s")],
        started_at="2024-05-01T03:12:09Z", duration_s=0.5, tool_version=f"0.1.0+{JWT}")


ALL_REPORTS = {"full": build_full_report, "clean": build_clean_report, "incomplete": incomplete_report,
               "hostile": hostile_report}


# ---------------------------------------------------------------------- the format


@pytest.mark.parametrize("name", sorted(ALL_REPORTS))
def test_output_parses_strictly_with_help_and_type_for_every_family(name: str) -> None:
    families = parse(render(ALL_REPORTS[name](), "prometheus"))
    assert set(families) <= set(FAMILIES)
    assert list(families) == [f for f in FAMILIES if f in families], "families out of order"
    for fam in families.values():
        assert fam.type == "gauge" and fam.help and fam.samples


@needs_promtool
@pytest.mark.parametrize("name", sorted(ALL_REPORTS))
def test_promtool_check_metrics_accepts_the_output(name: str) -> None:
    promtool_check(render(ALL_REPORTS[name](), "prometheus"))


@needs_promtool
def test_promtool_really_rejects_broken_exposition() -> None:
    """The promtool check above can fail: an unescaped quote in a label value is caught."""
    with pytest.raises(AssertionError):
        promtool_check('# HELP a x\n# TYPE a gauge\na{l="x"y"} 1\n')


def test_every_check_has_every_status_one_hot(full_report: Report) -> None:
    status = parse(render(full_report, "prometheus"))["promrw_doctor_check_status"]
    assert len(status.samples) == len(full_report.results) * len(STATUSES)
    for r in full_report.results:
        series = {labels["status"]: v for labels, v in status.samples
                  if labels["check"] == r.check_id and labels["target"] == r.target}
        assert set(series) == {s.value for s in Status}
        assert series == {s.value: (1.0 if s == r.status else 0.0) for s in Status}
        labels = next(lb for lb, _ in status.samples if lb["check"] == r.check_id)
        assert list(labels) == ["check", "category", "target", "status"]
        assert labels["category"] == r.category


def test_a_status_change_flips_values_and_keeps_the_series(full_report: Report) -> None:
    """Alerts and dashboards see the same series before and after: only the 0/1 values move."""
    before = parse(render(full_report, "prometheus"))["promrw_doctor_check_status"]
    fixed = copy.deepcopy(full_report)
    fixed.results[2].status = Status.PASS
    fixed.results[2].findings = []
    after = parse(render(fixed, "prometheus"))["promrw_doctor_check_status"]
    assert [lb for lb, _ in before.samples] == [lb for lb, _ in after.samples]
    check = full_report.results[2].check_id
    assert after.values(check=check, status="fail") == [0.0] and after.values(check=check, status="pass") == [1.0]


def test_one_finding_series_per_problem_finding(full_report: Report) -> None:
    finding = parse(render(full_report, "prometheus"))["promrw_doctor_finding"]
    expected = sorted((r.target, r.check_id, f.code, f.severity.value if f.severity else "", f.status.value)
                      for r in full_report.results for f in r.findings if f.status.is_problem)
    got = sorted((lb["target"], lb["check"], lb["code"], lb["severity"], lb["status"]) for lb, _ in finding.samples)
    assert got == expected and len(got) == 3
    assert all(v == 1.0 for _, v in finding.samples)
    assert list(finding.samples[0][0]) == ["check", "code", "severity", "status", "target"]
    # Passing findings and notes are not problems.
    assert not finding.values(code="OK") and not finding.values(code="SIDECAR_NOTE")


def test_repeated_labels_are_counted_not_repeated(full_report: Report) -> None:
    """Two findings of one code on one check (two subjects) are one series with value 2."""
    report = copy.deepcopy(full_report)
    env = report.results[2]
    env.findings.append(dataclass_copy(env.findings[0], subject="other-container"))
    report.results.append(copy.deepcopy(report.results[0]))  # a check reported twice for one target
    report.results[-1].status = Status.WARN
    report.root_causes.append(copy.deepcopy(report.root_causes[0]))
    families = parse(render(report, "prometheus"))
    assert families["promrw_doctor_finding"].values(code="SIDECAR_ENV_MISSING") == [2.0]
    assert families["promrw_doctor_root_causes"].values(code="IDENTITY_ROLE_MISSING") == [2.0]
    dup = families["promrw_doctor_check_status"]
    assert dup.values(check="lint.binding-keys", status="warn") == [1.0]  # the worse of pass and warn
    assert sum(dup.values(check="lint.binding-keys")) == 1.0


def dataclass_copy(finding: Finding, **changes: Any) -> Finding:
    out = copy.deepcopy(finding)
    for key, value in changes.items():
        setattr(out, key, value)
    return out


def test_root_causes_by_code_and_target(full_report: Report) -> None:
    root = parse(render(full_report, "prometheus"))["promrw_doctor_root_causes"]
    assert sorted((lb["code"], lb["target"], v) for lb, v in root.samples) == sorted(
        (rc.code, rc.target, 1.0) for rc in full_report.root_causes)
    assert all(list(lb) == ["code", "target"] for lb, _ in root.samples)


def test_empty_families_are_left_out(clean_report: Report) -> None:
    families = parse(render(clean_report, "prometheus"))
    assert "promrw_doctor_finding" not in families and "promrw_doctor_root_causes" not in families


@pytest.mark.parametrize("name", sorted(ALL_REPORTS))
def test_exit_code_gauge_equals_exit_code_for(name: str) -> None:
    report = ALL_REPORTS[name]()
    code = exit_code_for(report)
    families = parse(render(report, "prometheus"))
    assert families["promrw_doctor_run_exit_code"].values() == [float(code)]
    assert families["promrw_doctor_run_success"].values() == [1.0 if code == 0 else 0.0]
    stamp = families["promrw_doctor_run_timestamp_seconds"].values()
    assert ("promrw_doctor_last_success_timestamp_seconds" in families) == (code == 0)
    if code == 0:
        assert families["promrw_doctor_last_success_timestamp_seconds"].values() == stamp


def test_exit_codes_cover_clear_findings_and_incomplete() -> None:
    """The reports above really exercise 0, 1 and 3 (so the test above is not vacuous)."""
    assert {exit_code_for(f()) for f in ALL_REPORTS.values()} == {0, 1, 3}


def test_the_cli_exit_code_wins_over_the_default_policy(full_report: Report) -> None:
    """The CLI passes the code it computed with --fail-on; the gauge must say what the process exited."""
    families = parse(render(full_report, "prometheus", exit_code=exit_code_for(full_report, "none")))
    assert families["promrw_doctor_run_exit_code"].values() == [3.0]  # unknown/error remain: incomplete


def test_run_timestamp_is_when_the_run_finished(full_report: Report) -> None:
    families = parse(render(full_report, "prometheus"))
    started = datetime.fromisoformat("2024-05-01T03:12:09+00:00").timestamp()
    assert families["promrw_doctor_run_timestamp_seconds"].values() == [pytest.approx(started + 3.21)]
    assert families["promrw_doctor_run_duration_seconds"].values() == [pytest.approx(3.21)]
    assert families["promrw_doctor_check_duration_seconds"].values(check="azure.dcr-exists") == [0.25]
    assert families["promrw_doctor_info"].samples == [({"version": "0.1.0"}, 1.0)]


def test_label_values_are_escaped_and_read_back_exactly() -> None:
    report = hostile_report()
    text = render(report, "prometheus")
    status = parse(text)["promrw_doctor_check_status"]
    labels = {lb["check"]: lb for lb, _ in status.samples}
    weird = labels['kubernetes.we"ird\\id\nx']
    # Quote, backslash and newline survive the round trip; the terminal escape is shown, not sent.
    assert weird["target"] == 'ns/"quoted"\\back\nline\\x1bterm'
    assert 'check="kubernetes.we\\"ird\\\\id\\nx"' in text
    assert "\x1b" not in text
    assert parse(text)["promrw_doctor_finding"].values(code='CODE_"Q"\\') == [1.0]


def test_label_value_escaping_unit() -> None:
    assert label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert label_value("tab\there\r\nx") == "tab    here\\nx"
    assert label_value("\ud800") == "\\\\ud800"  # a lone surrogate cannot be UTF-8: shown escaped
    assert label_value(None) == ""


def test_planted_secrets_never_appear() -> None:
    for report in (build_full_report(), hostile_report()):
        text = render(report, "prometheus")
        for fragment in SECRET_FRAGMENTS:
            assert fragment not in text
        assert "c2lnbmF0dXJlUGxhbnRlZEZvclRlc3RzT25seQ" not in text
    text = render(hostile_report(), "prometheus")
    assert "[REDACTED]" in text  # redacted where it was, not dropped silently
    # Free text never becomes a label: no summary, evidence or remediation in the output.
    full = render(build_full_report(), "prometheus")
    assert LONG_SUMMARY[:40] not in full and "az role assignment" not in full and "INGESTION_URL" not in full


def test_rendering_does_not_mutate_the_report(full_report: Report) -> None:
    before = copy.deepcopy(full_report)
    render(full_report, "prometheus")
    assert full_report == before


def test_output_is_deterministic_whatever_the_result_order(full_report: Report) -> None:
    first = render(full_report, "prometheus")
    shuffled = copy.deepcopy(full_report)
    shuffled.results.reverse()
    shuffled.root_causes.reverse()
    assert render(shuffled, "prometheus") == first == render(full_report, "prometheus")


# ---------------------------------------------------------------------- public API and CLI wiring


def test_registered_in_the_public_api_and_the_cli(full_report: Report) -> None:
    assert "prometheus" in FORMATS and "prometheus" in cli_options.FORMATS
    assert render(full_report, "prometheus", exit_code=1) == render_prometheus(full_report, exit_code=1)


def test_json_report_converts_to_the_same_exposition(full_report: Report) -> None:
    """A CronJob can log -o json and still feed the metrics from that one run."""
    document = json.loads(render(full_report, "json", exit_code=1))
    assert render_document(document) == render(full_report, "prometheus", exit_code=1)


@pytest.mark.parametrize("document", [[], {"results": []}, {"exit_code": 0, "results": [{"status": "pass"}]},
                                      {"exit_code": 0, "results": [{"check_id": "x", "status": "meh"}]},
                                      {"exit_code": 1, "tool": "x"}])
def test_a_document_that_is_not_a_report_is_an_input_error(document: Any) -> None:
    with pytest.raises(InputError):
        render_document(document)


def test_module_converts_a_json_file_atomically(tmp_path: Path, full_report: Report) -> None:
    report_json = tmp_path / "report.json"
    report_json.write_text(render(full_report, "json", exit_code=1), encoding="utf-8")
    out = tmp_path / "promrw_doctor.prom"
    proc = subprocess.run([sys.executable, "-m", "promrw_doctor.reports.prometheus", str(report_json), str(out)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == render(full_report, "prometheus", exit_code=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["promrw_doctor.prom", "report.json"]  # no temp left

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "promrw_doctor.reports.prometheus", str(bad)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_cli_writes_the_textfile(tmp_path: Path) -> None:
    """``-o prometheus --output-file`` through the real CLI, on a lint run (no cluster needed)."""
    from promrw_doctor.cli import cli

    out = tmp_path / "promrw_doctor.prom"
    result = CliRunner().invoke(cli, ["lint", str(REPO / "fixtures" / "lint" / "seed-binding.yaml"),
                                      "-o", "prometheus", "--output-file", str(out), "--fail-on", "none"])
    assert result.exit_code in (0, 3), result.output
    families = parse(out.read_text(encoding="utf-8"))
    assert families["promrw_doctor_run_exit_code"].values() == [float(result.exit_code)]
    assert families["promrw_doctor_check_status"].samples


# ---------------------------------------------------------------------- deploy/alerts.yaml


def _rule_groups(strip_annotations: bool = False) -> dict[str, Any]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    spec: dict[str, Any] = copy.deepcopy(doc["spec"])
    if strip_annotations:  # promtool compares annotations verbatim; the templates are checked by `check rules`
        for group in spec["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    return spec


@needs_promtool
def test_alert_rules_pass_promtool_check(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(_rule_groups()), encoding="utf-8")
    assert PROMTOOL is not None
    proc = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


TIMESTAMPS = ("promrw_doctor_run_timestamp_seconds", "promrw_doctor_last_success_timestamp_seconds")
# What a healthy CronJob looks like in promtool, whose clock starts at 0: a fresh timestamp every minute.
FRESH = {"series": 'promrw_doctor_run_timestamp_seconds{job="pushgateway"}', "values": "0+60x180"}


def _series(text: str) -> list[dict[str, str]]:
    """Every sample of a rendering as a promtool input series, constant for three hours, as if scraped
    from a Pushgateway; the timestamps are left to the caller (promtool's clock starts at 0)."""
    out = []
    for fam in parse(text).values():
        if fam.name in TIMESTAMPS:
            continue
        for labels, value in fam.samples:
            inner = "".join(f'{k}="{label_value(v)}",' for k, v in labels.items())
            out.append({"series": f'{fam.name}{{{inner}job="pushgateway"}}', "values": f"{value:.10g}x180"})
    return out


@needs_promtool
def test_shipped_alerts_fire_on_a_rendered_report(tmp_path: Path) -> None:
    """The alerts key on the names and labels this renderer really writes."""
    text = render(build_full_report(), "prometheus", exit_code=1)
    fresh = [*_series(text), FRESH]
    stale = [{"series": 'promrw_doctor_run_timestamp_seconds{job="pushgateway"}', "values": "0x180"}]
    target = TARGET
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": fresh, "alert_rule_test": [
                {"eval_time": "3m", "alertname": "PromrwDoctorRemoteWriteBroken", "exp_alerts": []},
                {"eval_time": "10m", "alertname": "PromrwDoctorRemoteWriteBroken", "exp_alerts": [
                    {"exp_labels": {"severity": "critical", "code": code, "target": target, "job": "pushgateway"}}
                    for code in ("IDENTITY_ROLE_MISSING", "SIDECAR_ENV_MISSING")]},
                {"eval_time": "40m", "alertname": "PromrwDoctorRootCause", "exp_alerts": []},
                {"eval_time": "50m", "alertname": "PromrwDoctorRootCause", "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "code": "SIDECAR_IMAGE_UNPINNED", "target": target,
                                    "job": "pushgateway"}}]},
                {"eval_time": "50m", "alertname": "PromrwDoctorCannotLook", "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "check": check, "category": check.split(".")[0],
                                    "status": status, "target": target, "job": "pushgateway"}}
                    for check, status in (("identity.token-claims", "error"), ("kubernetes.pod-list", "unknown"))]},
                {"eval_time": "100m", "alertname": "PromrwDoctorNotReporting", "exp_alerts": []},
                {"eval_time": "100m", "alertname": "PromrwDoctorAbsent", "exp_alerts": []},
                {"eval_time": "100m", "alertname": "PromrwDoctorCertificateExpiring", "exp_alerts": []},
            ]},
            {"interval": "1m", "input_series": stale, "alert_rule_test": [
                # Last run at 0: older than 3 x 30 minutes from 90m on, firing 5 minutes later.
                {"eval_time": "92m", "alertname": "PromrwDoctorNotReporting", "exp_alerts": []},
                {"eval_time": "97m", "alertname": "PromrwDoctorNotReporting", "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "job": "pushgateway"}}]},
                {"eval_time": "97m", "alertname": "PromrwDoctorRemoteWriteBroken", "exp_alerts": []},
            ]},
            {"interval": "1m", "input_series": [{"series": 'unrelated{job="x"}', "values": "1x180"}],
             "alert_rule_test": [
                 {"eval_time": "20m", "alertname": "PromrwDoctorAbsent", "exp_alerts": [
                     {"exp_labels": {"severity": "warning"}}]}]},
        ],
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rule_groups(strip_annotations=True)), encoding="utf-8")
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests), encoding="utf-8")
    assert PROMTOOL is not None
    proc = subprocess.run([PROMTOOL, "test", "rules", "tests.yaml"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_certificate_alert_and_propagating_exclusion(tmp_path: Path) -> None:
    """CERT_EXPIRING_SOON gets its own alert; ROLE_ASSIGNMENT_PROPAGATING pages nobody."""
    report = Report(
        command="run", targets=[Target(id=TARGET, kind="pod")],
        results=[_result("identity.cert-validity", Status.WARN, findings=[
                     Finding(code="CERT_EXPIRING_SOON", status=Status.WARN, severity=Severity.MEDIUM, summary="s",
                             check_id="identity.cert-validity")]),
                 _result("azure.role-assignment", Status.WARN, findings=[
                     Finding(code="ROLE_ASSIGNMENT_PROPAGATING", status=Status.WARN, severity=Severity.MEDIUM,
                             summary="s", check_id="azure.role-assignment")])],
        root_causes=[RootCause(target=TARGET, check_id="identity.cert-validity", code="CERT_EXPIRING_SOON",
                               status=Status.WARN, severity=Severity.MEDIUM, summary="s"),
                     RootCause(target=TARGET, check_id="azure.role-assignment", code="ROLE_ASSIGNMENT_PROPAGATING",
                               status=Status.WARN, severity=Severity.MEDIUM, summary="s")],
        started_at="2024-05-01T03:12:09Z", duration_s=1.0, tool_version="0.1.0")
    series = [*_series(render(report, "prometheus", exit_code=1)), FRESH]
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "alert_rule_test": [
            {"eval_time": "110m", "alertname": "PromrwDoctorCertificateExpiring", "exp_alerts": []},
            {"eval_time": "125m", "alertname": "PromrwDoctorCertificateExpiring", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "code": "CERT_EXPIRING_SOON", "target": TARGET,
                                "job": "pushgateway"}}]},
            {"eval_time": "125m", "alertname": "PromrwDoctorRootCause", "exp_alerts": []},
            {"eval_time": "125m", "alertname": "PromrwDoctorRemoteWriteBroken", "exp_alerts": []},
        ]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rule_groups(strip_annotations=True)), encoding="utf-8")
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests), encoding="utf-8")
    assert PROMTOOL is not None
    proc = subprocess.run([PROMTOOL, "test", "rules", "tests.yaml"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
