"""What Prometheus itself says about its remote write: log lines and self-metrics."""

from __future__ import annotations

from typing import Any

from promrw_doctor.core import Unknown, check
from promrw_doctor.domain.logs import default_signatures, match_signatures, queue_problems

from ..kubernetes._common import PUBLISH_ROOTS, logs, pod_of, since_text

#: Prometheus failing is explained by anything that breaks the path behind it, or by the sidecar itself.
PROMETHEUS_ROOTS = (*PUBLISH_ROOTS, "SIDECAR_MISSING", "PROMETHEUS_VERSION_UNSUPPORTED")


@check(id="pipeline.prometheus-remote-write", title="Prometheus's remote write delivers", category="pipeline",
       severity="high", codes=["PROMETHEUS_REMOTE_WRITE_FAILING"], depends_on=["pipeline.sidecar-publishing"],
       tags=["logs", "metrics", "prometheus"])
def prometheus_remote_write(ctx: Any) -> Any:
    """Prometheus logs no ``non-recoverable error`` / ``Failed to send batch, retrying`` over
    ``--since``, and its own metrics (read through the API server's pod proxy) show no
    failed/dropped samples, no growing backlog, and less than 2 minutes between the newest
    sample appended and the newest sent.

    Rates come from Prometheus's own TSDB when it scrapes itself; otherwise the counters since
    start are judged (a visible share failed or dropped). Runs after the sidecar check: when
    the sidecar is failing, Prometheus's errors are its echo.
    """
    log = ctx.try_fact("k8s.prometheus_logs")
    metrics = ctx.try_fact("k8s.prometheus_metrics")
    rates = ctx.try_fact("k8s.prometheus_rates")
    ns, pod = pod_of(ctx.target)
    if log is None and metrics is None:
        raise Unknown("could read neither the Prometheus log nor its metrics",
                      needs=f"get pods/log and get pods/proxy in namespace {ns}")
    window = since_text(log.since_s if log else None)
    reasons: list[str] = []
    evidence: dict[str, Any] = {"window": window}
    if log is not None:
        hits = match_signatures(log.lines, default_signatures(), "prometheus")
        if hits:
            evidence["log"] = [h.evidence() for h in hits]
            statuses = sorted({s for h in hits for s in h.statuses})
            reasons.append(hits[0].signature.meaning + (f" (HTTP {', '.join(statuses)})" if statuses else ""))
    else:
        evidence["log"] = "not read"
    if metrics is not None:
        evidence["queues"] = [q.evidence() for q in metrics.queues]
        for q in metrics.queues:
            for why in queue_problems(q, (rates or {}).get(q.url)):
                reasons.append(f"{q.url}: {why}")
        if rates is None:
            evidence["rates"] = "Prometheus does not scrape itself: judged the counters since start"
    else:
        evidence["metrics"] = "not read"
    if not reasons:
        queues = len(metrics.queues) if metrics is not None else 0
        return ctx.passed(f"Prometheus reports no remote-write failures ({queues} queue(s))", evidence=evidence)
    container = str(ctx.target.attributes.get("prometheus_container") or "prometheus")
    port = (ctx.try_fact("k8s.prometheus_web") or (9090, "/"))[0]
    return ctx.fail(
        "PROMETHEUS_REMOTE_WRITE_FAILING", f"Prometheus in {ns}/{pod}: " + "; ".join(reasons[:3]),
        evidence=evidence, explained_by=PROMETHEUS_ROOTS,
        remediation=[f"{logs(ns, pod, container, since=window)} | grep -E 'remote|non-recoverable|Failed to send'",
                     f"kubectl get --raw '/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/metrics' | grep "
                     "prometheus_remote_storage_samples"],
    )
