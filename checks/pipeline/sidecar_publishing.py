"""What the sidecar's own log says about publishing: summary lines and error signatures.

Where the lines come from: ``kubectl logs`` (``pods/log``) first. When the doctor may not
read pod logs, or the sidecar container started inside the window (a restart or a replaced
pod: the lines before it are gone from ``pods/log``), Container Insights' copy in Log
Analytics (``ContainerLogV2``, fact ``azure.sidecar_logs_la``) stands in or fills the gap.
The evidence says which source was judged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from promrw_doctor.collectors.kube_logs import ContainerLog
from promrw_doctor.core import AccessDenied, NotApplicable, Unknown, Unreachable, check
from promrw_doctor.core.facts import FactError
from promrw_doctor.domain.logs import (
    SUMMARY_MESSAGE,
    LogLine,
    default_signatures,
    judge_publishing,
    match_signatures,
    parse_rfc3339,
    parse_summary,
)

from ..kubernetes._common import PUBLISH_ROOTS, container_name, logs, pod_of, since_text

LA_FACT = "azure.sidecar_logs_la"
KUBE_SOURCE = "kubectl logs (pods/log)"
LA_OPTION = "--log-analytics-workspace"
DEFAULT_WINDOW_S = 1800.0


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


# ------------------------------------------------------------------ where the lines come from


def la_source(log: ContainerLog) -> str:
    return (log.note or "from Log Analytics ContainerLogV2").removeprefix("from ")


def log_analytics(ctx: Any) -> tuple[ContainerLog | None, str, str | None]:
    """(the Log Analytics copy, "", None), or (None, why not, the LA permission when that was what lacked)."""
    from promrw_doctor.collectors.azure_logs import LA_READER

    try:
        return ctx.fact(LA_FACT), "", None
    except FactError as exc:
        cause = exc.cause
    if isinstance(cause, NotApplicable):
        return None, str(cause) or "not applicable", None
    if isinstance(cause, AccessDenied):
        la_needs = cause.needs if cause.needs.startswith(LA_READER) else None
        return None, f"missing permission: {cause.needs}", la_needs
    if isinstance(cause, Unreachable):
        return None, f"unreachable: {cause}", None
    return None, f"{type(cause).__name__}: {cause}", None


def started_within(ctx: Any, window_s: float) -> tuple[str, float] | None:
    """(startedAt, epoch) of the running sidecar container when it started inside the window: its
    ``pods/log`` then misses the lines before (a restart, or the pod was replaced)."""
    status = ctx.try_fact("k8s.sidecar_status") or {}
    started = str(((status.get("state") or {}).get("running") or {}).get("startedAt") or "")
    ts = parse_rfc3339(started) if started else None
    if ts is None or ts <= ctx.now - window_s:
        return None
    return started, ts


def read_sidecar_log(ctx: Any) -> tuple[ContainerLog | None, dict[str, Any]]:
    """The log to judge and the evidence that says where it came from. ``Unknown`` when no source is readable."""
    try:
        kube = ctx.fact("k8s.sidecar_logs")
    except FactError as exc:
        if not isinstance(exc.cause, AccessDenied):
            raise
        denied = exc.cause.needs
        la, why, la_needs = log_analytics(ctx)
        if la is None:
            text = f"could not look: missing permission: {denied}; Log Analytics could not stand in ({why})"
            if LA_OPTION not in text and la_needs is None:
                text += f"; pass {LA_OPTION} WORKSPACE to read the sidecar's ContainerLogV2 lines instead"
            raise Unknown(text, needs=f"{denied} (or {la_needs})" if la_needs else denied) from None
        return la, {"source": la_source(la), "pods_log": f"not readable: missing permission: {denied}"}
    window_s = float(ctx.try_fact("k8s.log_window") or (kube.since_s if kube else None) or DEFAULT_WINDOW_S)
    started = started_within(ctx, window_s) if kube is not None else None
    if kube is None or started is None:
        return kube, {"source": KUBE_SOURCE}
    at, ts = started
    la, why, _ = log_analytics(ctx)
    if la is None:
        return kube, {"source": f"{KUBE_SOURCE}, only since the container started at {at}",
                      "log_analytics": f"not used for the lines before: {why}"}
    before = tuple(ln for ln in la.lines if ln.ts is not None and ln.ts < ts)
    merged = replace(kube, lines=before + kube.lines, note=None, workspace=la.workspace,
                     tail=kube.tail + la.tail)
    return merged, {"source": f"{la_source(la)} before the container started at {at} "
                              f"({len(before)} lines), {KUBE_SOURCE} since ({len(kube.lines)} lines)"}


def la_command(log: ContainerLog, window_s: float | None) -> str | None:
    """``az monitor log-analytics query`` that shows the same ContainerLogV2 lines."""
    if not log.workspace:
        return None
    from promrw_doctor.collectors.azure_logs import sidecar_query

    ns, pod = log.pod.split("/", 1)
    kql = sidecar_query(ns, pod, log.container, log.tail).replace("\n", " ")
    span = f" --timespan PT{int(window_s)}S" if window_s else ""
    return f"az monitor log-analytics query -w {log.workspace} --analytics-query '{kql}'{span}"


@check(id="pipeline.sidecar-publishing", title="The sidecar publishes to Azure Monitor", category="pipeline",
       severity="high", codes=["PUBLISH_FAILING"],
       depends_on=["kubernetes.sidecar-present", "kubernetes.sidecar-crashloop", "kubernetes.sidecar-ready"],
       needs=["k8s.sidecar_logs"], tags=["logs"])
def sidecar_publishing(ctx: Any) -> Any:
    """The sidecar's summary lines over ``--since`` show packets published and none failed, and
    it logs no write-path errors. Read with ``kubectl logs``; when pod logs are denied or the
    container restarted inside the window, Container Insights' copy in Log Analytics
    (``ContainerLogV2``, ``--log-analytics-workspace`` or the cluster's monitoring add-on)
    stands in or fills the gap, and the evidence names the source.

    The docs' own verification: "Remote write data is flowing if the output has nonzero value
    for avgBytesPerRequest". Both documented field sets are read (``failedPublishing``/
    ``successfullyPublished`` and the older ``...ToAll``/``...ToSome``). Errors are matched
    against the signature table (401, 403, 429, 404, token, DNS, TLS, connection). A failure
    here is usually explained by an identity, configuration or Azure-side root cause found by
    another check; it is then reported as that cause's consequence.
    """
    log, source = read_sidecar_log(ctx)
    ns, pod = pod_of(ctx.target)
    cname = container_name(ctx.target)
    window = since_text(log.since_s if log else None)
    if log is None or (not log.lines and log.note and not log.workspace):
        return ctx.passed(f"no log to judge ({log.note if log else 'container not running'})", evidence=source)
    summaries, others = split_summaries(log.lines)
    verdict = judge_publishing(summaries, ctx.now)
    hits = match_signatures(others, default_signatures(), "sidecar")
    evidence: dict[str, Any] = {"window": window, **source, **verdict.evidence()}
    if hits:
        evidence["errors"] = [h.evidence() for h in hits]
    if log.truncated:
        evidence["note"] = f"only the last {log.tail} lines were read"
    remediation = [logs(ns, pod, cname, since=window)]
    query = la_command(log, log.since_s)
    if query:
        remediation.append(query)
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
