"""The terminal table: 80 columns, root causes first, linkerd glyphs, colour only on request."""

from __future__ import annotations

import re
import unicodedata

import pytest
from report_samples import IMAGE_CMD, LONG_URL, ROLE_CMD, TARGET, build_full_report

from promrw_doctor.core.model import CheckResult, Report, Severity, Status, Target
from promrw_doctor.reports import render
from promrw_doctor.reports.table import ASCII_SYMBOLS, UNICODE_SYMBOLS, can_encode_symbols

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def columns(line: str) -> int:
    """Independent display-width measure: wide East Asian characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in ANSI.sub("", line))


def unbreakable(report: Report) -> set[str]:
    """Commands, URLs and locations: allowed to exceed the width, but only alone on their line."""
    out: set[str] = set()
    for rc in report.root_causes:
        out.update(rc.remediation)
    for r in report.results:
        for f in r.findings:
            out.update(f.remediation)
            out.update(x for x in (f.docs_url, f.location) if x)
            out.update(str(v) for v in f.evidence.values() if isinstance(v, str))
    return out


@pytest.mark.parametrize("width", [80, 60, 40])
@pytest.mark.parametrize("verbose", [False, True])
def test_every_line_fits_or_is_one_unbreakable_token(full_report: Report, width: int, verbose: bool) -> None:
    out = render(full_report, "table", width=width, verbose=verbose, exit_code=1)
    allowed = unbreakable(full_report)
    long_lines = [line for line in out.splitlines() if columns(line) > width]
    for line in long_lines:
        token = line.strip()
        assert token in allowed or " " not in token, f"line over {width} columns: {line!r}"
    assert long_lines, "fixture should contain commands longer than the terminal"


def test_commands_are_never_broken(full_report: Report) -> None:
    lines = [line.strip() for line in render(full_report, "table").splitlines()]
    assert ROLE_CMD in lines
    assert IMAGE_CMD in lines
    assert LONG_URL in lines


def test_root_causes_come_first_and_are_numbered(full_report: Report) -> None:
    out = render(full_report, "table")
    head = out.index("ROOT CAUSES (3)")
    assert head < out.index("\nkubernetes\n") < out.index("\nidentity\n")
    assert out.index("1. × IDENTITY_ROLE_MISSING") < out.index("2. × SIDECAR_ENV_MISSING") \
        < out.index("3. ‼ SIDECAR_IMAGE_UNPINNED")
    assert "consequences: pipeline.read-back, pipeline.write-probe" in out
    # A problem that is a root cause points back instead of repeating the commands.
    assert "fix       see root cause 1 above" in out
    assert out.count(ROLE_CMD) == 1


def test_each_status_has_its_glyph_and_reason(full_report: Report) -> None:
    out = render(full_report, "table")
    lines = out.splitlines()

    def line_of(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    assert line_of("√ Data collection rule exists") >= 0
    assert line_of("‼ Sidecar image <tag> & \"pinning\"  kubernetes.sidecar-image") >= 0
    assert line_of("× Sidecar environment is complete  kubernetes.sidecar-env") >= 0
    i = line_of("? Doctor may list pods")
    assert lines[i + 1].split() == ["needs", "list", "pods", "in", "namespace", "monitoring"]
    i = line_of("! Token audience")
    assert "KeyError" in lines[i + 1]
    i = line_of("~ A canary sample is accepted")
    assert "blocked by identity.role-assignment" in "\n".join(lines[i:i + 3])
    i = line_of("- Federated credential")
    assert "applies to workloadIdentity" in "\n".join(lines[i:i + 3])


def test_problem_details_show_evidence_location_fix_docs(full_report: Report) -> None:
    out = render(full_report, "table")
    block = out[out.index("× Sidecar environment is complete"):out.index("‼ Sidecar image")]
    assert "code      SIDECAR_ENV_MISSING (high)" in block
    assert "evidence  container: prom-remotewrite" in block
    assert 'missing: ["INGESTION_URL"]' in block
    assert "at        deploy/prometheus-values.yaml:42" in block
    assert "docs      https://example.invalid/docs/SIDECAR_ENV_MISSING" in block


def test_passing_checks_take_one_line_unless_verbose(full_report: Report) -> None:
    quiet = render(full_report, "table").splitlines()
    i = quiet.index("√ Pod-identity binding keys are consistent")
    assert quiet[i + 1] == ""  # next is the blank line before the next category
    loud = render(full_report, "table", verbose=True)
    assert "√ Pod-identity binding keys are consistent  lint.binding-keys\n    evidence  files: 3" in loud
    assert "SIDECAR_NOTE" in loud and "SIDECAR_NOTE" not in "\n".join(quiet)


def test_totals_and_exit_code_meaning(full_report: Report) -> None:
    out = render(full_report, "table", exit_code=1)
    assert "11 checks: 3 pass, 1 warn, 2 fail, 1 error, 2 blocked, 1 unknown, 1 skipped" in out
    assert out.rstrip().endswith("exit 1: findings at or above --fail-on")
    assert "exit " not in render(full_report, "table").splitlines()[-1]


def test_colour_only_when_asked(full_report: Report) -> None:
    plain = render(full_report, "table", color=False)
    assert "\x1b" not in plain
    coloured = render(full_report, "table", color=True)
    assert "\x1b[31m\x1b[1m×\x1b[0m" in coloured  # red bold fail glyph
    assert ANSI.sub("", coloured) == plain


def test_ascii_only_output_is_ascii(full_report: Report) -> None:
    out = render(full_report, "table", ascii_only=True, exit_code=1)
    out.encode("ascii")  # fixture text is ASCII outside the verbose-only note
    assert "1. x IDENTITY_ROLE_MISSING - critical" in out
    assert all(s.isascii() for s in ASCII_SYMBOLS.values())
    assert len(set(ASCII_SYMBOLS.values())) == len(ASCII_SYMBOLS) == len(UNICODE_SYMBOLS)


def test_can_encode_symbols() -> None:
    class Stream:
        def __init__(self, encoding: str | None) -> None:
            self.encoding = encoding

    assert can_encode_symbols(Stream("utf-8"))  # type: ignore[arg-type]
    assert not can_encode_symbols(Stream("ascii"))  # type: ignore[arg-type]
    assert not can_encode_symbols(Stream(None))  # type: ignore[arg-type]
    assert not can_encode_symbols(Stream("no-such-codec"))  # type: ignore[arg-type]


def test_header_names_command_target_time(full_report: Report) -> None:
    first, second = render(full_report, "table").splitlines()[:2]
    assert first == f"promrw-doctor check  {TARGET}"
    assert second.startswith("2024-05-01T03:12:09Z · 3.2s · kube_context aks-prod-eastus")


def test_multiple_findings_are_bulleted_and_wide_text_wraps() -> None:
    report = build_full_report()
    env = report.results[2]
    extra = type(env.findings[0])(code="SIDECAR_ENV_MISSING", status=Status.FAIL, severity=Severity.HIGH,
                                  summary="環境変数 " * 30, check_id=env.check_id)
    env.findings.append(extra)
    out = render(report, "table", width=60)
    assert "    • INGESTION_URL is not set" in out
    assert all(columns(line) <= 60 for line in out.splitlines() if "環境変数" in line)


def test_multi_target_runs_are_grouped_by_target() -> None:
    report = build_full_report()
    other = "monitoring/prometheus-prometheus-1"
    report.targets.append(Target(id=other, kind="pod"))
    report.results.append(CheckResult(check_id="kubernetes.sidecar-present", title="Sidecar present",
                                      category="kubernetes", status=Status.PASS, severity=Severity.HIGH,
                                      target=other))
    out = render(report, "table")
    assert out.index(f"TARGET {TARGET}") < out.index(f"TARGET {other}")
    assert f"1. × IDENTITY_ROLE_MISSING · critical · identity.role-assignment\n     {TARGET}\n" in out


def test_clean_run(clean_report: Report) -> None:
    out = render(clean_report, "table", exit_code=0)
    assert "ROOT CAUSE" not in out
    assert out.splitlines()[-2:] == ["1 check: 1 pass", "exit 0: all clear"]


def test_empty_run_says_so() -> None:
    report = Report(command="check", targets=[], results=[], root_causes=[], started_at="t", duration_s=0)
    out = render(report, "table")
    assert "no checks ran" in out and "0 checks" in out
