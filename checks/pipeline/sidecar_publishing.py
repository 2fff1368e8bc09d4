"""What the sidecar's own log says about publishing: summary lines and error signatures."""

from __future__ import annotations

from typing import Any

from promrw_doctor.core import check
from promrw_doctor.domain.logs import (
    SUMMARY_MESSAGE,
    LogLine,
    default_signatures,
    judge_publishing,
    match_signatures,
    parse_summary,
)

from ..kubernetes._common import PUBLISH_ROOTS, container_name, logs, pod_of, since_text


def split_summaries(lines: tuple[LogLine, ...] | list[LogLine]) -> tuple[list[Any], list[LogLine]]:
    """(parsed summary lines, every other line) — errors are matched only on the latter."""
    summaries, others = [], []
    for ln in lines:
        s = parse_summary(ln)
        if s is not None:
            summaries.append(s)
        elif SUMMARY_MESSAGE not in ln.text:
            others.append(ln)
    return summaries, others


@check(id="pipeline.sidecar-publishing", title="The sidecar publishes to Azure Monitor", category="pipeline",
       severity="high", codes=["PUBLISH_FAILING"],
       depends_on=["kubernetes.sidecar-present", "kubernetes.sidecar-crashloop", "kubernetes.sidecar-ready"],
       needs=["k8s.sidecar_logs"], tags=["logs"])
def sidecar_publishing(ctx: Any) -> Any:
    """The sidecar's summary lines over ``--since`` show packets published and none failed, and
    it logs no write-path errors.

    The docs' own verification: "Remote write data is flowing if the output has nonzero value
    for avgBytesPerRequest". Both documented field sets are read (``failedPublishing``/
    ``successfullyPublished`` and the older ``...ToAll``/``...ToSome``). Errors are matched
    against the signature table (401, 403, 429, 404, token, DNS, TLS, connection). A failure
    here is usually explained by an identity, configuration or Azure-side root cause found by
    another check; it is then reported as that cause's consequence.
    """
    log = ctx.fact("k8s.sidecar_logs")
    ns, pod = pod_of(ctx.target)
    cname = container_name(ctx.target)
    window = since_text(log.since_s if log else None)
    if log is None or (not log.lines and log.note):
        return ctx.passed(f"no log to judge ({log.note if log else 'container not running'})")
    summaries, others = split_summaries(log.lines)
    verdict = judge_publishing(summaries, ctx.now)
    hits = match_signatures(others, default_signatures(), "sidecar")
    evidence: dict[str, Any] = {"window": window, **verdict.evidence()}
    if hits:
        evidence["errors"] = [h.evidence() for h in hits]
    if log.truncated:
        evidence["note"] = f"only the last {log.tail} lines were read"
    remediation = [logs(ns, pod, cname, since=window)]
    meaning = f"; {hits[0].signature.meaning}" if hits else ""
    if verdict.status == "nothing":
        return ctx.fail("PUBLISH_FAILING",
                        f"{cname} in {ns}/{pod} published nothing in {window} ({verdict.lines} summary lines, "
                        f"successfullyPublished=0, failedPublishing={verdict.failed}){meaning}",
                        evidence=evidence, remediation=remediation, explained_by=PUBLISH_ROOTS)
    if verdict.status == "failing" or (verdict.status == "none" and hits):
        what = (f"{verdict.failed} packets failed, {verdict.succeeded} published in {window}"
                if verdict.status == "failing" else f"no summary line in {window}, but errors")
        return ctx.fail("PUBLISH_FAILING", f"{cname} in {ns}/{pod}: {what}{meaning}", evidence=evidence,
                        remediation=remediation, explained_by=PUBLISH_ROOTS)
    if verdict.status == "recovered" or hits:
        what = (f"{verdict.failed} packets failed earlier in {window}, none in the last 5 minutes"
                if verdict.status == "recovered" else f"publishing works but the log shows errors{meaning}")
        return ctx.warn("PUBLISH_FAILING", f"{cname} in {ns}/{pod}: {what}", evidence=evidence,
                        remediation=remediation, explained_by=PUBLISH_ROOTS)
    if verdict.status == "none":
        return ctx.passed(f"no summary line in the last {window} (cannot confirm publishing from the log)",
                          evidence=evidence)
    return ctx.passed(f"{verdict.succeeded} packets published, none failed in {window}", evidence=evidence)
