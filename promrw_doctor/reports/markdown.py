"""The incident-ticket report: GitHub-flavoured Markdown to paste into a ticket or a PR.

Order follows what a responder reads first: a one-line verdict, the root causes with
copyable fixes (fenced ``sh`` blocks, commands never rewrapped), a table of what is
wrong, the evidence per problem, then everything that passed or did not apply folded
into a ``<details>`` block, and the run context last. Root causes of one check that share
a fix are listed together with the fix once ("Fix for 1-3"); a later identical fix says
"same as"; each problem points at its own root cause. Every table cell is escaped
(pipes, newlines, HTML), every code span and fence is sized to its content, so
hostile text from the cluster cannot break the layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..core.model import CheckResult, Finding, Report, RootCause, Status
from ..core.redact import REDACTED
from ._common import (
    CausePlan,
    counts_line,
    exit_meaning,
    format_value,
    notes,
    printable,
    problem_findings,
    reason,
    scrub,
    scrub_text,
    worst_first,
)

STATUS_BADGE: dict[Status, str] = {
    Status.PASS: "✅ pass",
    Status.WARN: "⚠️ warn",
    Status.FAIL: "❌ fail",
    Status.ERROR: "💥 error",
    Status.UNKNOWN: "❓ unknown",
    Status.BLOCKED: "⛔ blocked",
    Status.SKIPPED: "⏭️ skipped",
}

# Shown in the summary table; the rest (pass, skipped) goes in the collapsed details.
_TABLE_STATUSES = {Status.FAIL, Status.WARN, Status.ERROR, Status.UNKNOWN, Status.BLOCKED}

_HTML_SPECIAL = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# Underscores only matter at word edges (GFM ignores intraword ones): INGESTION_URL stays readable.
_MD_SPECIAL = re.compile(r"[\\`*\[\]#|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


# ---------------------------------------------------------------------- escaping


def text(value: str) -> str:
    """Inline prose: Markdown and HTML specials escaped, so ``<tag>``, ``*`` and ``[x](y)`` show literally.

    The redaction marker is left as is, so a final redaction pass recognises it.
    """
    return REDACTED.join(
        _MD_SPECIAL.sub(lambda m: "\\" + m.group(), part.translate(_HTML_SPECIAL))
        for part in value.split(REDACTED)
    )


def cell(value: str) -> str:
    """A table cell: escaped prose on one line (newlines become ``<br>``)."""
    return "<br>".join(text(line) for line in value.splitlines()) if value else ""


def code(value: str, in_table: bool = False) -> str:
    """An inline code span, with a fence longer than any backtick run inside it.

    In a table, pipes are still escaped (GFM splits cells before parsing code spans) and
    newlines, which a code span cannot hold in a cell, become spaces.
    """
    if in_table:
        value = " ".join(value.splitlines()).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or longest else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def fenced(lines: Iterable[str], lang: str = "") -> list[str]:
    """A fenced block whose fence is longer than any backtick run in the content."""
    body = list(lines)
    longest = max((len(m) for line in body for m in re.findall(r"`{3,}", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", *body, fence]


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


# ---------------------------------------------------------------------- sections


def _verdict(report: Report, exit_code: int | None) -> str:
    counts = report.counts()
    fails, warns = counts["fail"], counts["warn"]
    incomplete = counts["error"] + counts["unknown"]
    if fails:
        head = f"❌ **{fails} failing check{'s' if fails > 1 else ''}**"
    elif warns:
        head = f"⚠️ **{warns} warning{'s' if warns > 1 else ''}**"
    elif incomplete:
        head = "❓ **Incomplete**: no problem found, but not every check could reach a verdict"
    else:
        head = "✅ **All clear**"
    tail = f" · exit {exit_code} ({exit_meaning(exit_code)})" if exit_code is not None else ""
    return f"{head} · {counts_line(report)}{tail}"


def _title(report: Report) -> str:
    targets = ", ".join(t.id for t in report.targets) or "no target"
    return f"# promrw-doctor {text(report.command)}: {text(targets)}"


def _lines(items: Iterable[str]) -> list[str]:
    """Commands as lines: a multi-line item (a YAML snippet) must be indented line by line."""
    return [line for item in items for line in item.splitlines()]


def _root_causes(plan: CausePlan, multi_target: bool) -> list[str]:
    """Numbered list items; a group's shared fix and consequences close its last item.

    Continuation lines are indented to the item's content column (``10. `` needs four
    spaces), or Markdown would end the list item and the fence with it.
    """
    out: list[str] = []
    for group in plan.groups:
        for n, rc in group:
            pad = " " * len(f"{n}. ")
            where = f"{code(rc.check_id)}" + (f" on {code(rc.target)}" if multi_target else "")
            out += [f"{n}. **{STATUS_BADGE[rc.status]} · {rc.severity.value} · {code(rc.code)}** ({where})", ""]
            out += [f"{pad}{line}" for line in text(rc.summary).splitlines()] + [""]
            found = plan.finding(rc)
            if found is not None and found.location:
                out += [f"{pad}Location: {code(found.location)}", ""]
        first = group[0][1]
        if first.remediation:
            label = "Fix" if len(group) == 1 else f"Fix for {plan.label(group)}"
            earlier = plan.fix_shown_at(group)
            if earlier is not None:
                out += [f"{pad}{label}: same as {earlier}.", ""]
            else:
                if len(group) > 1:
                    out += [f"{pad}{label}:", ""]
                out += [f"{pad}{line}" for line in fenced(_lines(first.remediation), "sh")] + [""]
        consequences = plan.consequences(group)
        if consequences:
            out += [f"{pad}Consequences: " + ", ".join(code(c) for c in consequences), ""]
    return out


def _summary_rows(results: Sequence[CheckResult], multi_target: bool) -> list[list[str]]:
    rows = []
    for r in worst_first(results):
        codes = sorted({f.code for f in problem_findings(r)})
        row = [code(r.check_id, in_table=True), STATUS_BADGE[r.status],
               " ".join(code(c, in_table=True) for c in codes), cell(_result_summary(r))]
        rows.append([code(r.target, in_table=True), *row] if multi_target else row)
    return rows


def _result_summary(r: CheckResult) -> str:
    if r.status == Status.UNKNOWN and r.needs:
        return f"{r.summary} (needs: {r.needs})" if r.needs not in r.summary else r.summary
    return reason(r) if r.status in (Status.BLOCKED, Status.ERROR) else r.summary


def _evidence(evidence: dict[str, Any], indent: str) -> list[str]:
    out = []
    for key, value in evidence.items():
        rendered = format_value(value)
        if "\n" in rendered:
            out.append(f"{indent}- {text(str(key))}:")
            out += [f"{indent}  {line}" for line in fenced(rendered.splitlines(), "text")]
        else:
            out.append(f"{indent}- {text(str(key))}: {code(rendered)}")
    return out


def _finding(f: Finding, plan: CausePlan, causes: dict[int, RootCause]) -> list[str]:
    sev = f" ({f.severity.value})" if f.severity else ""
    out = [f"- **{code(f.code)}**{sev}: {text(f.summary)}".replace("\n", " ")]
    if f.subject:
        out.append(f"  - Subject: {code(f.subject)}")
    if f.location:
        out.append(f"  - Location: {code(f.location)}")
    if f.evidence:
        out.append("  - Evidence:")
        out += _evidence(f.evidence, "    ")
    number = plan.cause_of(f)
    if f.consequence_of:
        out.append(f"  - Consequence of {code(f.consequence_of)} (see root causes)")
    elif number is not None and (f.remediation or causes[number].remediation):
        out.append(f"  - Fix: see root cause {number}")
    elif f.remediation:
        out.append("  - Fix:")
        out += [""] + [f"    {line}" for line in fenced(_lines(f.remediation), "sh")] + [""]
    if f.docs_url:
        out.append(f"  - Docs: <{f.docs_url}>")
    return out


def _problem(r: CheckResult, plan: CausePlan, causes: dict[int, RootCause], multi_target: bool,
             verbose: bool) -> list[str]:
    """A warn/fail check: each finding with its evidence, location, fix (or its root cause) and docs."""
    where = f" on {code(r.target)}" if multi_target else ""
    title = " ".join(r.title.split())  # a heading is one line
    out = [f"### {STATUS_BADGE[r.status]}: {text(title)} ({code(r.check_id)}{where})", ""]
    findings = problem_findings(r) + (notes(r) if verbose else [])
    if not findings:
        out.append(text(r.summary))
    for f in findings:
        out += _finding(f, plan, causes)
    out.append("")
    return out


def _context(report: Report, exit_code: int | None) -> list[str]:
    rows: list[tuple[str, str]] = [("Command", code(f"promrw-doctor {report.command}"))]
    for t in report.targets:
        extra = {k: v for k, v in t.to_dict().items() if k not in ("id", "kind", "description")}
        detail = f"{t.kind}" + (f", {t.description}" if t.description else "")
        if extra:
            detail += "; " + ", ".join(f"{k}={format_value(v)}" for k, v in extra.items())
        rows.append(("Target", f"{code(t.id)} ({text(detail)})"))
    for key, value in report.context.items():
        rows.append((text(str(key)), code(format_value(value))))
    rows += [
        ("Started", text(report.started_at)),
        ("Duration", f"{report.duration_s:.1f} s"),
        ("Tool", f"promrw-doctor {text(report.tool_version or 'unknown')}"),
    ]
    if exit_code is not None:
        rows.append(("Exit code", f"{exit_code} ({exit_meaning(exit_code)})"))
    return ["## Context", "", *[f"- **{k}:** {v}".replace("\n", " ") for k, v in rows], ""]


def render_markdown(report: Report, *, exit_code: int | None = None, verbose: bool = False) -> str:
    """Ticket-ready Markdown. ``verbose`` adds notes on passing checks to the details."""
    report = scrub(report, printable)
    multi = len({r.target for r in report.results} | {t.id for t in report.targets}) > 1
    plan = CausePlan(report)
    causes = {plan.number(rc): rc for rc in report.root_causes}
    out = [_title(report), "", _verdict(report, exit_code), ""]

    if report.root_causes:
        out += ["## Root causes", "", *_root_causes(plan, multi)]

    flagged = [r for r in report.results if r.status in _TABLE_STATUSES]
    headers = (["Target"] if multi else []) + ["Check", "Status", "Code", "Summary"]
    if flagged:
        out += ["## Checks that need attention", "", *table(headers, _summary_rows(flagged, multi)), ""]
    # Only fail/warn have evidence worth a section; the table row says all there is about the others.
    detailed = [r for r in worst_first(flagged) if r.status.is_problem]
    if detailed:
        out += ["## Evidence", ""]
        for r in detailed:
            out += _problem(r, plan, causes, multi, verbose)

    rest = [r for r in report.results if r.status not in _TABLE_STATUSES]
    if rest:
        out += [f"<details><summary>Passed or not applicable ({len(rest)})</summary>", ""]
        out += table(headers, _summary_rows(rest, multi))
        if verbose:
            for r in rest:
                for f in notes(r):
                    out += ["", *_finding(f, plan, causes)]
        out += ["", "</details>", ""]
    if not report.results:
        out += ["No checks ran.", ""]

    out += _context(report, exit_code)
    return scrub_text("\n".join(out).rstrip("\n") + "\n")
