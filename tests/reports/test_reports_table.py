"""The terminal table: 80 columns, root causes first, linkerd glyphs, colour only on request."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from report_samples import IMAGE_CMD, LONG_URL, ROLE_CMD, TARGET, build_full_report

from promrw_doctor.core.model import CheckResult, Finding, Report, RootCause, Severity, Status, Target
from promrw_doctor.reports import render
from promrw_doctor.reports._common import CausePlan
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
    # Skipped checks fold into one line per category; verbose lists each with its reason.
    assert line_of("- 1 skipped (-v says why): identity.workload-federation") >= 0
    assert "Federated credential" not in out
    loud = render(full_report, "table", verbose=True).splitlines()
    i = next(i for i, line in enumerate(loud) if line.startswith("- Federated credential"))
    assert "applies to workloadIdentity" in "\n".join(loud[i:i + 3])


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


# ---------------------------------------------------------------------- repeated fixes, cross-references, skips

BINDING_FIX = [
    "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentityBinding\nmetadata:\n  name: demo1\n"
    "spec:\n  azureIdentity: <AzureIdentityName>\n  selector: <AzureIdentityBindingSelector>",
    "kubectl apply -f binding.yaml",
]


def _finding(check_id: str, code: str, summary: str, location: str | None = None,
             remediation: list[str] | None = None, status: Status = Status.FAIL) -> Finding:
    return Finding(code=code, status=status, severity=Severity.CRITICAL, summary=summary, location=location,
                   remediation=list(remediation or []), check_id=check_id)


def _cause(f: Finding, consequences: list[str] | None = None) -> RootCause:
    return RootCause(target="files", check_id=f.check_id, code=f.code, status=f.status,
                     severity=f.severity or Severity.HIGH, summary=f.summary, remediation=list(f.remediation),
                     consequences=list(consequences or []))


def _result(check_id: str, status: Status, findings: list[Finding] | None = None, **kw: object) -> CheckResult:
    return CheckResult(check_id=check_id, title=kw.pop("title", f"Title of {check_id}"),  # type: ignore[arg-type]
                       category=check_id.split(".")[0], status=status, severity=Severity.HIGH, target="files",
                       findings=list(findings or []), **kw)  # type: ignore[arg-type]


def shared_fix_report() -> Report:
    """Like the seed binding: three root causes of one check carry the same corrected YAML,
    a fourth in another check happens to print the same commands, a fifth has its own."""
    keys = [
        _finding("lint.binding-keys", "POD_IDENTITY_BINDING_INVALID", "AzureIdentity is capitalised",
                 "binding.yaml:8", BINDING_FIX),
        _finding("lint.binding-keys", "POD_IDENTITY_BINDING_INVALID", "Selector is capitalised",
                 "binding.yaml:9", BINDING_FIX),
        _finding("lint.binding-keys", "MANIFEST_MISINDENTED", "AzureIdentity, Selector at the top level",
                 "binding.yaml:8", BINDING_FIX),
    ]
    name = _finding("lint.manifest-name", "MANIFEST_NAME_MISSING", "metadata.name is missing",
                    "binding.yaml:5", BINDING_FIX)
    quote = _finding("lint.typographic-quotes", "YAML_TYPOGRAPHIC_QUOTES", "AzureIdentity has curly quotes",
                     "binding.yaml:8", ['AzureIdentity: "<AzureIdentityName>"'])
    results = [
        _result("lint.binding-keys", Status.FAIL, keys, summary=keys[0].summary),
        _result("lint.binding-identity-ref", Status.BLOCKED, blocked_by="lint.binding-keys",
                summary="blocked by lint.binding-keys"),
        _result("lint.manifest-name", Status.FAIL, [name], summary=name.summary),
        _result("lint.typographic-quotes", Status.FAIL, [quote], summary=quote.summary),
    ]
    causes = [_cause(f, ["lint.binding-identity-ref"]) for f in keys] + [_cause(name), _cause(quote)]
    return Report(command="lint", targets=[Target(id="files", kind="files")], results=results,
                  root_causes=causes, started_at="2024-05-01T03:12:09Z", duration_s=0.1)


def root_cause_section(out: str) -> str:
    return out[out.index("ROOT CAUSES"):out.index("\nlint\n")]


def test_root_causes_sharing_a_fix_print_it_once() -> None:
    report = shared_fix_report()
    out = render(report, "table", exit_code=1)
    causes = root_cause_section(out)
    # Numbered one by one, shown together, each with its own location; one fix for the group.
    group = causes[causes.index("1. × POD_IDENTITY_BINDING_INVALID"):causes.index("4. × MANIFEST_NAME_MISSING")]
    assert group.index("AzureIdentity is capitalised") < group.index("at        binding.yaml:8") \
        < group.index("2. × POD_IDENTITY_BINDING_INVALID") < group.index("Selector is capitalised") \
        < group.index("at        binding.yaml:9") < group.index("3. × MANIFEST_MISINDENTED") \
        < group.index("fix 1-3\n")
    assert "\n\n" not in group.strip("\n")  # one block
    assert group.count("consequences: lint.binding-identity-ref") == 1
    # The YAML is printed once in the whole report; the unrelated check with the same fix refers to it.
    assert out.count("apiVersion: aadpodidentity.k8s.io/v1") == 1
    assert out.count("kubectl apply -f binding.yaml") == 1
    assert "     fix       same as 1-3\n" in causes
    assert '     fix       AzureIdentity: "<AzureIdentityName>"' in causes
    allowed = {line.strip() for token in unbreakable(report) for line in token.splitlines()}
    for width in (80, 40):
        text = render(report, "table", width=width)
        for line in text.splitlines():
            assert columns(line) <= width or line.strip() in allowed or " " not in line.strip(), line


def test_a_lone_repeated_fix_says_same_as() -> None:
    report = shared_fix_report()
    report.root_causes = [report.root_causes[3], report.root_causes[4], report.root_causes[0]]
    causes = root_cause_section(render(report, "table"))
    assert causes.count("apiVersion: aadpodidentity.k8s.io/v1") == 1
    assert causes.index("1. × MANIFEST_NAME_MISSING") < causes.index("apiVersion") \
        < causes.index("3. × POD_IDENTITY_BINDING_INVALID") < causes.index("     fix       same as 1\n")


def test_each_finding_points_at_its_own_root_cause() -> None:
    report = shared_fix_report()
    out = render(report, "table")
    details = out[out.index("× Title of lint.binding-keys"):]
    pointers = re.findall(r"fix       see root cause (\d+) above", details)
    assert pointers == ["1", "2", "3", "4", "5"]


def test_root_cause_numbers_follow_the_ranking_not_the_finding_order() -> None:
    """A warn found before a fail of the same code ranks second: the pointers must cross."""
    warn = _finding("kubernetes.sidecar-env", "SIDECAR_ENV_MISSING", "CLUSTER is not set", status=Status.WARN,
                    remediation=["kubectl set env sts/p CLUSTER=aks-prod"])
    fail = _finding("kubernetes.sidecar-env", "SIDECAR_ENV_MISSING", "INGESTION_URL is not set",
                    remediation=["kubectl set env sts/p INGESTION_URL=https://x.invalid/write"])
    same = _finding("kubernetes.sidecar-env", "SIDECAR_ENV_MISSING", "INGESTION_URL is not set",
                    location="values.yaml:12", remediation=["kubectl set env sts/p INGESTION_URL=https://x.invalid/write"])
    report = Report(command="check", targets=[Target(id="files", kind="pod")],
                    results=[_result("kubernetes.sidecar-env", Status.FAIL, [warn, fail, same])],
                    root_causes=[_cause(fail), _cause(same), _cause(warn)], started_at="t", duration_s=0)
    out = render(report, "table")
    details = out[out.index("× Title of kubernetes.sidecar-env"):]
    assert re.findall(r"see root cause (\d+) above", details) == ["3", "1", "2"]
    # The two identical fail findings are two root causes (one fix between them), each with its location.
    causes = root_cause_section(out.replace("\nkubernetes\n", "\nlint\n"))
    assert "fix 1-2" in causes and "at        values.yaml:12" in causes


def skipped_report() -> Report:
    results = [
        _result("lint.sidecar-present", Status.SKIPPED, title="Remote-write sidecar container is defined",
                summary="no Helm values, Prometheus CR, Pod or StatefulSet among the files"),
        _result("lint.certificate-wiring", Status.SKIPPED, title="Certificate path is mounted",
                summary="skipped: depends on lint.sidecar-present, which was skipped"),
        _result("lint.certificate-object-type", Status.SKIPPED, title="Certificate object carries its key",
                summary="skipped: depends on lint.certificate-wiring, which was skipped"),
        _result("lint.duplicate-keys", Status.PASS, title="No duplicate keys", summary="ok"),
        _result("lint.binding-identity-ref", Status.BLOCKED, title="Binding names an AzureIdentity",
                blocked_by="lint.binding-keys", summary="blocked by lint.binding-keys"),
        _result("lint.azure-identity", Status.SKIPPED, title="AzureIdentity is valid",
                summary="no AzureIdentity among the files"),
        _result("lint.pod-list", Status.UNKNOWN, title="Pods can be listed", summary="could not look",
                needs="list pods in namespace monitoring"),
        _result("pipeline.probe", Status.SKIPPED, title="A canary arrives",
                summary="not asked for: pass --probe"),
    ]
    return Report(command="lint", targets=[Target(id="files", kind="files")], results=results, root_causes=[],
                  started_at="t", duration_s=0)


def test_skipped_checks_fold_into_one_line_per_category_unless_verbose() -> None:
    report = skipped_report()
    quiet = render(report, "table").splitlines()
    skipped = [line for line in quiet if line.startswith("- ")]
    assert skipped == [
        "- 4 skipped (-v says why): lint.sidecar-present (+2 depending on it),",
        "- 1 skipped (-v says why): pipeline.probe",
    ]
    assert quiet[quiet.index(skipped[0]) + 1] == "    lint.azure-identity"
    text = "\n".join(quiet)
    for title in ("Remote-write sidecar", "Certificate path", "AzureIdentity is valid", "A canary arrives"):
        assert title not in text
    # Blocked and unknown checks stay listed one by one, with their reasons; passes keep one line.
    assert "~ Binding names an AzureIdentity  lint.binding-identity-ref\n    blocked by lint.binding-keys" in text
    assert "? Pods can be listed  lint.pod-list\n    could not look\n    needs     list pods" in text
    assert "√ No duplicate keys\n" in text
    assert "8 checks: 1 pass, 1 blocked, 1 unknown, 5 skipped" in text

    loud = render(report, "table", verbose=True)
    assert "skipped (-v says why)" not in loud
    assert "- Remote-write sidecar container is defined  lint.sidecar-present\n" \
           "    no Helm values, Prometheus CR, Pod or StatefulSet among the files" in loud
    assert "- Certificate path is mounted  lint.certificate-wiring\n" \
           "    skipped: depends on lint.sidecar-present, which was skipped" in loud
    assert "- A canary arrives  pipeline.probe\n    not asked for: pass --probe" in loud


def test_folded_skips_fit_the_width_and_take_no_colour() -> None:
    report = skipped_report()
    for width in (80, 40):
        out = render(report, "table", width=width)
        assert all(columns(line) <= width for line in out.splitlines())
    coloured = render(report, "table", color=True)
    assert "\x1b[2m" in coloured and ANSI.sub("", coloured) == render(report, "table")


def test_seed_binding_lint_report_reads_cleanly() -> None:
    """End to end on the seed fixture: the real engine's root causes and findings line up."""
    from promrw_doctor.api import lint

    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "lint" / "seed-binding.yaml"
    report = lint([str(fixture)])
    out = render(report, "table", exit_code=1)
    assert out.count("apiVersion: aadpodidentity.k8s.io/v1") == 1
    plan = CausePlan(report)
    number_to_cause = {plan.number(rc): rc for rc in report.root_causes}
    pointed = [int(n) for n in re.findall(r"see root cause (\d+) above", out)]
    problems = [f for r in report.results for f in r.findings if f.status.is_problem and not f.consequence_of]
    assert len(pointed) == len(problems) == len(report.root_causes)
    assert sorted(pointed) == list(range(1, len(report.root_causes) + 1))  # each root cause once
    for f, n in zip(problems, [plan.cause_of(f) for f in problems], strict=True):
        assert n is not None and number_to_cause[n].summary == f.summary and number_to_cause[n].code == f.code
    skipped = report.counts()["skipped"]
    assert skipped > 3
    assert sum(1 for line in out.splitlines() if line.startswith("- ")) == 1
    assert f"- {skipped} skipped (-v says why): " in out
