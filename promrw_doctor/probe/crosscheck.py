"""Probe versus checks: when the canary got through but a check says the path is broken, which to believe.

A check cannot read other checks' verdicts (checks read facts), so this runs on the
finished :class:`~promrw_doctor.core.model.Report`: it fills in the result of
``pipeline.probe-vs-checks`` and re-ranks the root causes. ``promrw-doctor probe`` applies
it; any caller holding a report and its registry can (``cross_check(report, registry)``).

Who wins, and why:

* the canary went **the sidecar's way** (its settings, its identity): believe the probe. It
  is direct evidence of delivery; the check judged from configuration or Azure metadata that
  can be stale or partial (a role assignment that has since propagated, one inherited through
  a group or a parent scope the doctor cannot read, a certificate renewed since);
* the canary went **with the doctor's identity** (``--as-me``) and the check is about *who*
  sends (roles, certificates, identity wiring): believe the check for the sidecar. The canary
  proves the URL, the DCR and the network; not the sidecar's identity;
* the check is about **rates** (throttling, quota): believe the check. A rate limit drops
  part of the traffic; one canary slipping through does not disprove it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..core.model import CheckResult, Finding, Report, Severity, Status
from .stages import IDENTITY_CLAIM_CODES, PATH_CODES, PROBE_CONTRADICTS_CHECKS, RATE_CODES

PROBE_CHECK = "pipeline.canary-probe"
CROSS_CHECK = "pipeline.probe-vs-checks"
PROBE_FAMILY = frozenset({PROBE_CHECK, CROSS_CHECK, "pipeline.probe-vs-production"})


@dataclass(frozen=True)
class Contradiction:
    check_id: str
    code: str
    summary: str
    believe: str  # "probe" | "check"
    why: str


def judge(code: str, as_me: bool) -> tuple[str, str]:
    """(who to believe, why) for a failing check ``code`` beside a delivered canary."""
    if code in RATE_CODES:
        return "check", ("throttling drops part of the traffic; one canary slipping through does not disprove "
                         "it (compare Prometheus's failed-sample rate)")
    if as_me and code in IDENTITY_CLAIM_CODES:
        return "check", ("the canary was sent with your own identity (--as-me): it proves the ingestion URL, "
                         "the DCR and the network, not the sidecar's identity, which the check is about")
    how = "with your identity, along" if as_me else "with the sidecar's identity and"
    return "probe", (f"the canary travelled {how} the sidecar's ingestion URL and was read back from the "
                     "workspace: direct evidence of delivery. The check judged from configuration or Azure "
                     "metadata that can be stale or partial (propagation finished since, a role inherited "
                     "through a group or parent scope the doctor cannot read)")


def contradictions(results: Sequence[CheckResult], *, as_me: bool) -> list[Contradiction]:
    """Failing findings of other checks about the path a delivered canary just used."""
    out: list[Contradiction] = []
    seen: set[tuple[str, str]] = set()
    for r in results:
        if r.check_id in PROBE_FAMILY:
            continue
        for f in r.findings:
            if f.status != Status.FAIL or f.code not in PATH_CODES or (r.check_id, f.code) in seen:
                continue
            seen.add((r.check_id, f.code))
            believe, why = judge(f.code, as_me)
            out.append(Contradiction(r.check_id, f.code, f.summary, believe, why))
    return out


def _finding(c: Contradiction) -> Finding:
    verdict = "believe the probe" if c.believe == "probe" else "believe the check"
    return Finding(
        code=PROBE_CONTRADICTS_CHECKS, status=Status.WARN, severity=Severity.MEDIUM, check_id=CROSS_CHECK,
        summary=f"the canary was delivered but {c.check_id} says {c.code} ({c.summary}): {verdict}: {c.why}",
        evidence={"check_id": c.check_id, "code": c.code, "believe": c.believe, "why": c.why},
        subject=c.code,
    )


def _probe_facts(result: CheckResult) -> tuple[bool, bool]:
    """(delivered, as_me) from the canary check's finding evidence."""
    delivered = result.status == Status.PASS
    as_me = any(bool((f.evidence or {}).get("as_me")) for f in result.findings)
    return delivered, as_me


def evaluate(results: Sequence[CheckResult], target: str, template: CheckResult | None) -> CheckResult | None:
    """The ``pipeline.probe-vs-checks`` result for one target (None when the probe did not run there)."""
    probe = next((r for r in results if r.target == target and r.check_id == PROBE_CHECK), None)
    if probe is None:
        return None
    base = template or CheckResult(check_id=CROSS_CHECK, title="The probe and the other checks agree",
                                   category="pipeline", status=Status.SKIPPED, severity=Severity.MEDIUM,
                                   target=target)
    delivered, as_me = _probe_facts(probe)
    if not delivered:
        return replace(base, status=Status.SKIPPED, findings=[],
                       summary=f"skipped: the probe did not deliver ({probe.status.value}); nothing to contradict")
    others = [r for r in results if r.target == target and r.check_id not in PROBE_FAMILY]
    if not others:
        return replace(base, status=Status.SKIPPED, findings=[],
                       summary="skipped: no other check ran to compare with (add --with-checks)")
    found = contradictions(others, as_me=as_me)
    if not found:
        f = Finding(code="OK", status=Status.PASS, severity=Severity.INFO, check_id=CROSS_CHECK,
                    summary=f"the delivered canary agrees with the {len(others)} other check(s)")
        return replace(base, status=Status.PASS, summary=f.summary, findings=[f], blocked_by=None)
    findings = [_finding(c) for c in found]
    return replace(base, status=Status.WARN, summary=findings[0].summary, findings=findings, blocked_by=None)


def cross_check(report: Report, registry: Any) -> Report:
    """``report`` with ``pipeline.probe-vs-checks`` evaluated per target and the root causes re-ranked."""
    from ..core.engine import rank_root_causes

    results = list(report.results)
    targets: Iterable[str] = dict.fromkeys(r.target for r in results if r.check_id == PROBE_CHECK)
    changed = False
    for target in targets:
        idx = next((i for i, r in enumerate(results) if r.target == target and r.check_id == CROSS_CHECK), None)
        new = evaluate(results, target, results[idx] if idx is not None else None)
        if new is None:
            continue
        changed = True
        if idx is None:
            results.append(new)
        else:
            results[idx] = new
    if not changed:
        return report
    return replace(report, results=results, root_causes=rank_root_causes(registry, results))
