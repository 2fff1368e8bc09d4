"""Markdown for tickets: escaped tables, copyable fixes, folded details, context."""

from __future__ import annotations

import re

from report_samples import IMAGE_CMD, ROLE_CMD, TARGET

from promrw_doctor.core.model import Report
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
