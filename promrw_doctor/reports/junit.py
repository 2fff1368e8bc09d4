"""JUnit XML for CI systems (GitHub Actions reporters, GitLab, Jenkins, Azure Pipelines).

Layout: ``<testsuites>`` with one ``<testsuite>`` per **target** (a pod, a file set, a
lab scenario), so a multi-target run shows one suite per thing checked; the category
goes into ``classname="promrw_doctor.<category>"``, which every consumer groups by.
One ``<testcase name="<check id>: <title>">`` per check.

Status mapping, chosen so the CI verdict matches the exit code:

- ``fail``  -> ``<failure type="CODE" message="summary">`` with evidence, fix, docs;
- ``error`` -> ``<error type="error">``: the check broke, a defect in the doctor;
- ``unknown`` -> ``<error type="unknown">`` naming what was missing. Not ``skipped``:
  unknown means *incomplete* (exit 3) and a skip is rendered green by most consumers,
  which would hide that the doctor could not look;
- ``blocked`` / ``skipped`` -> ``<skipped message="blocked by X">`` / the reason: no
  verdict of their own, and the failure that blocked them is already counted once;
- ``warn`` -> passes, with the warning in ``<system-out>`` (visible, not red);
- ``pass`` -> passes (notes, if any, in ``<system-out>``).

Control characters XML 1.0 cannot carry are escaped as ``\\xNN`` before they reach the tree.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from ..core.model import CheckResult, Finding, Report, Status
from ._common import format_value, notes, printable, problem_findings, reason, scrub

# Anything else XML 1.0 forbids after printable() has run: lone surrogates, U+FFFE/U+FFFF.
_XML_INVALID = re.compile("[\ud800-\udfff\ufffe\uffff]")


_COUNTERS = ("tests", "failures", "errors", "skipped")
_OUTCOME_COUNTER = {"failure": "failures", "error": "errors", "skipped": "skipped"}


def _x(value: str) -> str:
    """Text safe for an XML 1.0 document (ElementTree escapes &, <, > and quotes itself)."""
    return _XML_INVALID.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _finding_text(f: Finding) -> str:
    """Plain-text body of a finding: what a CI log viewer shows under the red line."""
    lines = [f"{f.code} ({f.severity.value if f.severity else 'n/a'}): {f.summary}"]
    if f.subject:
        lines.append(f"subject: {f.subject}")
    if f.location:
        lines.append(f"location: {f.location}")
    if f.evidence:
        lines.append("evidence:")
        lines += [f"  {k}: " + format_value(v).replace("\n", "\n    ") for k, v in f.evidence.items()]
    if f.consequence_of:
        lines.append(f"consequence of: {f.consequence_of}")
    if f.remediation:
        lines.append("fix:")
        lines += [f"  {cmd}" for cmd in f.remediation]
    if f.docs_url:
        lines.append(f"docs: {f.docs_url}")
    return "\n".join(lines)


def _testcase(r: CheckResult) -> tuple[ET.Element, str]:
    """The ``<testcase>`` for one result and its JUnit outcome (passed/failure/error/skipped)."""
    case = ET.Element("testcase", {
        "classname": _x(f"promrw_doctor.{r.category}"),
        "name": _x(f"{r.check_id}: {r.title}"),
        "time": _seconds(r.duration_s),
    })
    problems = problem_findings(r)
    if r.status == Status.FAIL:
        failing = [f for f in problems if f.status == Status.FAIL] or problems
        code = failing[0].code if failing else "FAIL"
        el = ET.SubElement(case, "failure", {"type": _x(code), "message": _x(r.summary)})
        el.text = _x("\n\n".join(_finding_text(f) for f in problems) or r.summary)
        return case, "failure"
    if r.status in (Status.ERROR, Status.UNKNOWN):
        message = reason(r)
        if r.status == Status.UNKNOWN and r.needs and r.needs not in message:
            message = f"{message} (needs: {r.needs})"
        el = ET.SubElement(case, "error", {"type": r.status.value, "message": _x(message)})
        el.text = _x(message if r.status == Status.ERROR else f"{message}\nthe doctor could not look; "
                     "grant what it needs or run it where it can reach the API, then re-run")
        return case, "error"
    if r.status in (Status.BLOCKED, Status.SKIPPED):
        ET.SubElement(case, "skipped", {"message": _x(reason(r) or r.status.value)})
        return case, "skipped"
    shown = problems + notes(r)  # warn: the warning; pass: any advice
    if shown:
        out = ET.SubElement(case, "system-out")
        out.text = _x("\n\n".join(f"{f.status.value.upper()} {_finding_text(f)}" for f in shown))
    return case, "passed"


def _suite(name: str, results: list[CheckResult], report: Report, properties: dict[str, Any]) -> ET.Element:
    suite = ET.Element("testsuite", {"name": _x(name), "timestamp": _x(report.started_at.removesuffix("Z"))})
    props = ET.SubElement(suite, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", {"name": _x(str(key)), "value": _x(format_value(value))})
    tally = dict.fromkeys(_COUNTERS, 0)
    for r in results:
        case, outcome = _testcase(r)
        suite.append(case)
        tally["tests"] += 1
        if outcome in _OUTCOME_COUNTER:
            tally[_OUTCOME_COUNTER[outcome]] += 1
    for key, count in tally.items():
        suite.set(key, str(count))
    suite.set("time", _seconds(sum(r.duration_s for r in results)))
    return suite


def render_junit(report: Report, *, exit_code: int | None = None) -> str:
    """JUnit XML (``<testsuites>`` root with totals), UTF-8, pretty-printed."""
    report = scrub(report, printable)
    root = ET.Element("testsuites", {"name": "promrw-doctor", "time": _seconds(report.duration_s)})
    base = {"command": report.command, "tool_version": report.tool_version, **report.context}
    if exit_code is not None:
        base["exit_code"] = exit_code
    target_ids = [t.id for t in report.targets]
    target_ids += [r.target for r in report.results if r.target not in target_ids]
    descriptions = {t.id: t for t in report.targets}
    totals = dict.fromkeys(_COUNTERS, 0)
    for target in target_ids:
        results = [r for r in report.results if r.target == target]
        props = dict(base)
        if target in descriptions:
            props["target_kind"] = descriptions[target].kind
        suite = _suite(target or "promrw-doctor", results, report, props)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, count in totals.items():
        root.set(key, str(count))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
