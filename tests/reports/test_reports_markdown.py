"""Markdown for tickets: escaped tables, copyable fixes, folded details, context."""

from __future__ import annotations

import re

from report_samples import IMAGE_CMD, ROLE_CMD, TARGET

from promrw_doctor.core.model import CheckResult, Finding, Report, RootCause, Severity, Status, Target
from promrw_doctor.reports import render
from promrw_doctor.reports.markdown import cell, code, fenced, text

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def table_rows(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|")]


def test_title_status_and_context(full_report: Report) -> None:
    md = render(full_report, "markdown", exit_code=1)
    lines = md.splitlines()
    assert lines[0] == f"# promrw-doctor check: {TARGET}"
    assert lines[2].startswith("❌ **2 failing checks** · 11 checks: 3 pass, 1 warn, 2 fail")
    assert lines[2].endswith("exit 1 (findings at or above --fail-on)")
    context = md[md.index("## Context"):]
    assert "- **kube_context:** `aks-prod-eastus`" in context
    assert "- **Tool:** promrw-doctor 0.1.0" in context
    assert "- **Started:** 2024-05-01T03:12:09Z" in context
    assert f"- **Target:** `{TARGET}` (pod, Prometheus pod" in context


def test_every_table_row_has_exactly_the_columns(full_report: Report) -> None:
    md = render(full_report, "markdown", exit_code=1)
    rows = table_rows(md)
    assert len(rows) >= 12
    for row in rows:
        # "| a | b | c | d |" -> 5 unescaped pipes; an unescaped pipe in a cell would add a column.
        assert len(UNESCAPED_PIPE.findall(row)) == 5, row
    assert "prom-remotewrite \\| pipes \\| in \\| text" in md


def test_root_causes_have_fenced_sh_blocks_with_the_exact_commands(full_report: Report) -> None:
    md = render(full_report, "markdown")
    causes = md[md.index("## Root causes"):md.index("## Checks that need attention")]
    assert f"   ```sh\n   {ROLE_CMD}\n   ```" in causes
    assert f"   ```sh\n   {IMAGE_CMD}\n   ```" in causes
    assert "Consequences: `pipeline.read-back`, `pipeline.write-probe`" in causes
    assert causes.index("IDENTITY_ROLE_MISSING") < causes.index("SIDECAR_ENV_MISSING")


def test_problem_sections_have_compact_evidence(full_report: Report) -> None:
    md = render(full_report, "markdown")
    section = md[md.index("## Evidence"):md.index("<details>")]
    assert "  - Location: `deploy/prometheus-values.yaml:42`" in section
    assert "    - container: `prom-remotewrite`" in section
    assert "    - token: `[REDACTED]`" in section  # the final redaction pass keeps the backticks
    assert "  - Fix: see root cause 1" in section
    assert "      ```text\n      line1\n      line2 | pipe \\x07 bell\n      ```" in section
    assert "### ⚠️ warn: Sidecar image &lt;tag&gt; &amp; \"pinning\" (`kubernetes.sidecar-image`)" in section


def test_passing_and_skipped_checks_are_folded(full_report: Report) -> None:
    md = render(full_report, "markdown")
    details = md[md.index("<details>"):md.index("</details>")]
    assert details.startswith("<details><summary>Passed or not applicable (4)</summary>")
    assert "`identity.workload-federation` | ⏭️ skipped" in details
    attention = md[md.index("## Checks that need attention"):md.index("## Evidence")]
    assert "`lint.binding-keys`" not in attention
    assert "| `kubernetes.pod-list` | ❓ unknown |  | could not look: missing permission" in attention


def test_verbose_adds_notes(full_report: Report) -> None:
    assert "SIDECAR_NOTE" not in render(full_report, "markdown")
    assert "SIDECAR_NOTE" in render(full_report, "markdown", verbose=True)


def test_clean_report(clean_report: Report) -> None:
    md = render(clean_report, "markdown", exit_code=0)
    assert "✅ **All clear** · 1 check: 1 pass · exit 0 (all clear)" in md
    assert "## Root causes" not in md and "## Checks that need attention" not in md


def test_cell_escaping() -> None:
    assert cell("a | b\nc <d> & *e* [x](y)") == "a \\| b<br>c &lt;d&gt; &amp; \\*e\\* \\[x\\](y)"
    assert cell("") == ""
    assert text("INGESTION_URL _x_") == "INGESTION_URL \\_x\\_"


def test_code_spans_and_fences_outgrow_their_content() -> None:
    assert code("a`b") == "`` a`b ``"
    assert code("plain") == "`plain`"
    assert code("x|y\nz", in_table=True) == "`x\\|y z`"
    assert fenced(["echo ```"], "sh") == ["````sh", "echo ```", "````"]


def test_single_target_has_no_target_column(clean_report: Report) -> None:
    md = render(clean_report, "markdown")
    assert "| Check | Status | Code | Summary |" in md
    assert "| Target |" not in md


# ---------------------------------------------------------------------- repeated fixes and cross-references

BINDING_FIX = [
    "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentityBinding\nspec:\n  azureIdentity: <AzureIdentityName>",
    "kubectl apply -f binding.yaml",
]


def _report(specs: list[tuple[str, str, str, str, list[str]]]) -> Report:
    """One fail finding and one root cause per (check_id, code, summary, location, fix), in that order."""
    results: dict[str, CheckResult] = {}
    causes = []
    for check_id, code_, summary, location, fix in specs:
        f = Finding(code=code_, status=Status.FAIL, severity=Severity.HIGH, summary=summary, location=location,
                    remediation=list(fix), check_id=check_id)
        r = results.setdefault(check_id, CheckResult(check_id=check_id, title=f"Title of {check_id}",
                                                     category="lint", status=Status.FAIL, severity=Severity.HIGH,
                                                     target="files", summary=summary))
        r.findings.append(f)
        causes.append(RootCause(target="files", check_id=check_id, code=code_, status=Status.FAIL,
                                severity=Severity.HIGH, summary=summary, remediation=list(fix),
                                consequences=["lint.binding-identity-ref"] if "keys" in check_id else []))
    return Report(command="lint", targets=[Target(id="files", kind="files")], results=list(results.values()),
                  root_causes=causes, started_at="t", duration_s=0)


def shared_fix_report() -> Report:
    return _report([
        ("lint.binding-keys", "POD_IDENTITY_BINDING_INVALID", "AzureIdentity is capitalised", "b.yaml:8", BINDING_FIX),
        ("lint.binding-keys", "POD_IDENTITY_BINDING_INVALID", "Selector is capitalised", "b.yaml:9", BINDING_FIX),
        ("lint.binding-keys", "MANIFEST_MISINDENTED", "keys at the top level", "b.yaml:7", BINDING_FIX),
        ("lint.manifest-name", "MANIFEST_NAME_MISSING", "metadata.name is missing", "b.yaml:5", BINDING_FIX),
        ("lint.typographic-quotes", "YAML_TYPOGRAPHIC_QUOTES", "curly quotes", "b.yaml:8", ['A: "<x>"']),
    ])


def test_root_causes_sharing_a_fix_print_it_once() -> None:
    md = render(shared_fix_report(), "markdown")
    causes = md[md.index("## Root causes"):md.index("## Checks that need attention")]
    assert md.count("apiVersion: aadpodidentity.k8s.io/v1") == 1
    assert causes.index("1. **") < causes.index("   Location: `b.yaml:8`") < causes.index("2. **") \
        < causes.index("   Location: `b.yaml:9`") < causes.index("3. **") < causes.index("   Fix for 1-3:")
    assert causes.count("Consequences: `lint.binding-identity-ref`") == 1
    assert "   Fix: same as 1-3." in causes
    assert '   ```sh\n   A: "<x>"\n   ```' in causes


def test_multi_line_fixes_stay_inside_their_list_item() -> None:
    """Every line of a fence inside a list item is indented to the item's content column,
    or Markdown ends the item (and the fence) at the first line that is not."""
    specs = [(f"lint.check-{i}", "CODE", f"problem {i}", f"f.yaml:{i}", [f"a: {i}\nb:\n  c: {i}"])
             for i in range(1, 12)]
    md = render(_report(specs), "markdown")
    causes = md[md.index("## Root causes"):md.index("## Checks that need attention")]
    assert "   ```sh\n   a: 9\n   b:\n     c: 9\n   ```" in causes
    assert "10. **" in causes
    assert "    ```sh\n    a: 10\n    b:\n      c: 10\n    ```" in causes  # "10. " needs four spaces


def test_each_finding_points_at_its_own_root_cause() -> None:
    md = render(shared_fix_report(), "markdown")
    evidence = md[md.index("## Evidence"):]
    assert re.findall(r"Fix: see root cause (\d+)", evidence) == ["1", "2", "3", "4", "5"]
