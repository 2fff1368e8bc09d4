"""docs/REPORTS.md's table examples are real renderings: every line shown (except cuts) is in the output.

The lint example is rendered from the shipped fixture through the real lint run; the
two-target example from the report built here. A renderer change that moves a label, a
glyph, the grouping (``fix 1-3``, ``same as N``), the folded skipped line, the ``at`` line
or the multi-target header/totals makes this fail until the documentation follows.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from promrw_doctor import api
from promrw_doctor.core.model import CheckResult, Finding, Report, RootCause, Severity, Status, Target
from promrw_doctor.reports import render

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "REPORTS.md"
CUT = "…"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ · ")


def table_examples() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## table\n"):text.index("## json\n")]
    return [block.split("\n") for block in re.findall(r"```\n(.*?)\n```", section, flags=re.S)]


def assert_shown_in_order(doc_lines: list[str], rendered: str) -> None:
    """Each documented line without a cut (and not the run's time line) appears, whole, in order."""
    out = rendered.split("\n")
    pos = 0
    for line in doc_lines:
        if CUT in line or TIMESTAMP.match(line):
            continue
        try:
            pos = out.index(line, pos) + 1
        except ValueError:
            raise AssertionError(f"documented line not rendered (in this order): {line!r}\n---\n{rendered}") from None


def two_target_report() -> Report:
    a = Target("monitoring/prometheus-prom-0", "pod", "Prometheus pod with remote-write sidecar")
    b = Target("monitoring/prometheus-infra-0", "pod", "Prometheus pod with remote-write sidecar")
    fix = ["az role assignment create --assignee-object-id 3f0c1e2a-5b6d-4e7f-8a9b-0c1d2e3f4a5b "
           '--assignee-principal-type ServicePrincipal --role "Monitoring Metrics Publisher" --scope /subscriptions/'
           "00000000-1111-2222-3333-444444444444/resourceGroups/MA_amw-prod_eastus_managed/providers/"
           "Microsoft.Insights/dataCollectionRules/amw-prod"]
    missing = "prom-rw-mi holds no Monitoring Metrics Publisher on DCR amw-prod or a scope containing it"
    nothing = "prom-remotewrite published nothing in 30m; the ingestion endpoint refused the identity (403)"
    results: list[CheckResult] = []
    causes: list[RootCause] = []
    for t in (a, b):
        role = Finding("ROLE_ASSIGNMENT_MISSING", Status.FAIL, missing, Severity.CRITICAL, remediation=list(fix),
                       check_id="azure.role-assignment")
        publish = Finding("PUBLISH_FAILING", Status.FAIL, nothing, Severity.HIGH,
                          check_id="pipeline.sidecar-publishing", consequence_of="ROLE_ASSIGNMENT_MISSING")

        def res(cid: str, title: str, status: Status, summary: str = "", findings: tuple[Finding, ...] = (),
                t: Target = t) -> CheckResult:
            return CheckResult(cid, title, cid.split(".")[0], status, Severity.HIGH, t.id, summary, list(findings))

        results += [
            res("kubernetes.sidecar-present", "Remote-write sidecar container present", Status.PASS),
            res("identity.workload-identity", "Workload identity is wired to the pod", Status.SKIPPED,
                "applies to workloadIdentity; this target uses podIdentity"),
            res("identity.certificate-validity", "The client certificate is valid", Status.SKIPPED,
                "applies to aadApplication; this target uses podIdentity"),
            res("identity.certificate-registered", "The certificate is registered on the app", Status.SKIPPED,
                "skipped: depends on identity.certificate-validity, which was skipped"),
            res("azure.role-assignment", "Monitoring Metrics Publisher on the DCR", Status.FAIL, missing, (role,)),
            res("pipeline.sidecar-publishing", "The sidecar publishes to Azure Monitor", Status.FAIL, nothing,
                (publish,)),
        ]
        causes.append(RootCause(t.id, "azure.role-assignment", "ROLE_ASSIGNMENT_MISSING", Status.FAIL,
                                Severity.CRITICAL, missing, list(fix), ["pipeline.sidecar-publishing"]))
    return Report(command="run", targets=[a, b], results=results, root_causes=causes,
                  started_at="2026-11-21T03:12:09Z", duration_s=4.1, context={"kube_context": "aks-prod-eastus"},
                  tool_version="0.1.0")


def test_the_table_section_has_both_examples() -> None:
    lint_example, run_example = table_examples()[:2]
    assert lint_example[0].startswith("promrw-doctor lint") and run_example[0] == "promrw-doctor run  2 targets"


def test_lint_example_is_the_fixtures_real_rendering() -> None:
    cwd = os.getcwd()
    os.chdir(REPO)  # the example shows the path as typed from the repository root
    try:
        report = api.lint(["fixtures/lint/seed-binding.yaml"])
    finally:
        os.chdir(cwd)
    rendered = render(report, "table", exit_code=api.exit_code(report), width=80)
    doc = table_examples()[0]
    assert_shown_in_order(doc, rendered)
    # The elements the section describes are really in it.
    assert "     fix 1-3" in doc and any(line.lstrip().startswith("at        ") for line in doc)
    assert any(line.startswith("- 15 skipped (-v says why): ") and "(+12 depending on it)" in line for line in doc)


def test_two_target_example_is_a_real_rendering() -> None:
    rendered = render(two_target_report(), "table", exit_code=1, width=80)
    doc = table_examples()[1]
    assert_shown_in_order(doc, rendered)
    assert "     fix       same as 1" in doc
    assert "12 checks on 2 targets: 2 pass, 4 fail, 6 skipped" in doc
