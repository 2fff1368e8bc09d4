"""The end-to-end canary probe (opt-in: it writes one sample) and what it means beside the other checks."""

from __future__ import annotations

from typing import Any

from promrw_doctor.core import Skip, Unknown, check
from promrw_doctor.core.model import Severity
from promrw_doctor.domain.logs import queue_problems

# Importing the probe's facts registers them (probe.plan, probe.result) with the fact registry.
from promrw_doctor.probe import facts as _probe_facts  # noqa: F401
from promrw_doctor.probe.stages import (
    CANARY_NOT_ARRIVED,
    CANARY_REJECTED,
    INGESTION,
    INGESTION_UNREACHABLE,
    NETWORK,
    PROBE_CONTRADICTS_CHECKS,
    PRODUCTION_PATH_FAILING_CANARY_OK,
    QUERY,
    QUERY_ACCESS_MISSING,
    TOKEN,
    TOKEN_ACQUISITION_FAILED,
    ProbeResult,
    StageResult,
)

from ..kubernetes._common import SIDECAR_ROOTS, logs, pod_of

#: The probe may wait for Azure's ingestion lag (``--timeout``, at most an hour); the engine's
#: per-check timeout must not cut it short. The probe's own deadline is what bounds it.
PROBE_CHECK_TIMEOUT_S = 3600.0 + 120.0
#: What makes Prometheus's own queue fail while the canary (same URL, same identity) gets through.
PRODUCTION_ROOTS: tuple[str, ...] = (
    *SIDECAR_ROOTS, "REMOTE_WRITE_URL_MISMATCH", "SIDECAR_MISSING", "SIDECAR_CRASHLOOP", "SIDECAR_NOT_READY",
    "PROMETHEUS_VERSION_UNSUPPORTED", "PROMETHEUS_REMOTE_WRITE_FAILING", "PUBLISH_FAILING",
)


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} ms"


def delivered_summary(r: ProbeResult) -> str:
    tok, ing, q = r.stage(TOKEN), r.stage(INGESTION), r.stage(QUERY)
    status = ing.evidence.get("status") if ing else None
    return (f"canary delivered end to end in {_ms(r.total_ms)} (token {_ms(tok.duration_ms if tok else None)}, "
            f"ingestion HTTP {status} in {_ms(ing.duration_ms if ing else None)}, queryable after "
            f"{_ms(q.duration_ms if q else None)}) as {r.identity}")


def _remediation(ctx: Any, r: ProbeResult, stage: StageResult) -> list[str]:
    out: list[str] = []
    pod = pod_of(ctx.target) if ctx.target.kind == "pod" else None
    status = stage.evidence.get("status")
    claims = r.claims
    if stage.name == TOKEN:
        if stage.evidence.get("aadsts_fix"):
            out.append(str(stage.evidence["aadsts_fix"]))
        if pod:
            out.append(logs(pod[0], pod[1], str(ctx.target.attributes.get("sidecar_container") or
                                                "prom-remotewrite"), since="10m"))
    elif stage.name == INGESTION and status == 403:
        lookup = ctx.try_fact("azure.dcr")
        scope = getattr(lookup, "id", "") or "<DCR resource id>"
        who = (f"--assignee-object-id {claims['oid']} --assignee-principal-type ServicePrincipal"
               if claims.get("oid") else f"--assignee {claims.get('appid', '<client id>')}")
        out.append(f'az role assignment create --role "Monitoring Metrics Publisher" {who} --scope {scope}')
        out.append("if the assignment exists, wait up to 30 minutes for it to propagate, then probe again")
    elif stage.name == INGESTION and status == 401:
        profile = ctx.try_fact("azure.cloud")
        aud = getattr(profile, "ingestion_audience", None) or "<the cloud's ingestion audience>"
        out.append(f"set INGESTION_AAD_AUDIENCE={aud.rstrip('/')}/.default on the sidecar (token aud was "
                   f"{claims.get('aud', '?')})")
    elif stage.name == INGESTION and status == 404:
        out.append('az monitor data-collection rule list --query "[].{name:name, immutableId:immutableId}" -o table')
        out.append("copy the workspace's DCR immutable id and its DCE's metrics ingestion endpoint into INGESTION_URL")
    elif stage.name == INGESTION and status == 429:
        ws = ctx.try_fact("azure.workspace") or {}
        rid = ws.get("id") if isinstance(ws, dict) else None
        out.append(f"az monitor metrics list --resource {rid or '<workspace resource id>'} --metric "
                   "EventsPerMinuteIngestedPercentUtilization ActiveTimeSeriesPercentUtilization")
        out.append("above 100%: request a quota increase (support request, quota type Managed Prometheus), or "
                   "spread clusters over more DCRs/DCEs")
    elif stage.name == NETWORK:
        host = r.ingestion_url.split("/")[2] if r.ingestion_url.count("/") >= 2 else "<ingestion host>"
        out.append(f"curl -sv -o /dev/null https://{host}/  # from a node of the cluster: DNS, TLS, egress")
    elif stage.name == QUERY and stage.code == QUERY_ACCESS_MISSING:
        ws = ctx.try_fact("azure.workspace") or {}
        rid = ws.get("id") if isinstance(ws, dict) else None
        out.append('az role assignment create --role "Monitoring Data Reader" --assignee '
                   f'"$(az ad signed-in-user show --query id -o tsv)" --scope {rid or "<workspace resource id>"}')
    elif stage.name == QUERY:
        out.append(f"query later: {r.series} at {stage.evidence.get('at', '?')} should be {r.nonce}")
        out.append("az monitor data-collection rule show --ids <DCR id>  # does the DCR send to this workspace?")
    return out


@check(id="pipeline.canary-probe", title="A canary sample reaches the workspace end to end", category="pipeline",
       severity="critical",
       codes=[TOKEN_ACQUISITION_FAILED, CANARY_REJECTED, INGESTION_UNREACHABLE, CANARY_NOT_ARRIVED,
              QUERY_ACCESS_MISSING],
       needs=["probe.result"], tags=["probe", "writes"], timeout_s=PROBE_CHECK_TIMEOUT_S, opt_in=True)
def canary_probe(ctx: Any) -> Any:
    """Sends one canary sample ``promrw_doctor_canary{cluster, source="promrw-doctor"}`` (value: a fresh
    random nonce, timestamp: now) through the forwarder's code path with the sidecar's identity,
    then polls the workspace's query endpoint until the nonce is read back.

    The checks say what looks wrong; this proves whether data arrives, and when it does not,
    names the stage: token, network, ingestion (HTTP status and what it means) or query.
    Repeated probes reuse the one series (the nonce is the value, not a label), so a schedule
    adds no cardinality. A failed stage that another check explains (a missing role, an
    expired certificate) is shown as that check's consequence, not as a second root cause.
    Opt-in because it writes: ``promrw-doctor probe`` or ``run --probe``.
    """
    r: ProbeResult = ctx.fact("probe.result")
    ev = r.evidence()
    failed = r.failed
    if failed is None:
        if r.delivered:
            return ctx.passed(delivered_summary(r), evidence=ev)
        accepted = r.stage(INGESTION)
        raise Unknown(f"canary accepted (HTTP {accepted.evidence.get('status') if accepted else '?'}) but its "
                      f"arrival was not confirmed: {r.unconfirmed or 'no query made'}",
                      needs=r.unconfirmed_needs or "the workspace's query endpoint")
    code = failed.code or TOKEN_ACQUISITION_FAILED
    remediation = _remediation(ctx, r, failed)
    if failed.name == TOKEN:
        if r.as_me:
            raise Unknown(f"the doctor's own credential could not get an ingestion token: {failed.detail}",
                          needs="an Azure credential for the doctor (az login, AZURE_* env)")
        return ctx.fail(code, f"probe stopped at the token stage: {failed.detail}", evidence=ev,
                        remediation=remediation, explained_by=failed.explained_by, subject=TOKEN)
    if failed.name == NETWORK:
        return ctx.fail(code, f"probe stopped at the network stage ({failed.evidence.get('network')}): "
                              f"{failed.detail}", evidence=ev, remediation=remediation,
                        explained_by=failed.explained_by, subject=NETWORK)
    if failed.name == INGESTION:
        status = failed.evidence.get("status")
        who = (f" (principal oid {r.claims.get('oid')}, appid {r.claims.get('appid')})"
               if r.claims and str(r.claims.get("oid")) not in failed.detail else "")
        summary = f"probe stopped at ingestion: {failed.detail}{who if status in (401, 403) else ''}"
        audience = "audience" in str(failed.evidence.get("azure_error_code") or "").lower()
        if r.as_me and status in (401, 403) and not audience:
            # The doctor's identity was refused: that proves nothing about the sidecar's path.
            raise Unknown(f"could not prove delivery: the canary sent with your own identity (--as-me) was refused: "
                          f"{failed.detail}{who}; that is about your identity, not the sidecar's",
                          needs="Monitoring Metrics Publisher on the DCR for your identity, or probe as the "
                                "sidecar's identity")
        severity = Severity.HIGH if status == 429 else Severity.CRITICAL
        return ctx.fail(code, summary, evidence=ev, remediation=remediation, explained_by=failed.explained_by,
                        subject=INGESTION, severity=severity)
    if code == QUERY_ACCESS_MISSING:
        return ctx.warn(code, f"canary accepted (token {_ms(r.stages[0].duration_ms)}, ingestion "
                              f"{_ms((r.stage(INGESTION) or failed).duration_ms)}) but not confirmed: {failed.detail}",
                        evidence=ev, remediation=remediation, subject=QUERY, severity=Severity.MEDIUM)
    return ctx.fail(code, f"probe stopped at the query stage: {failed.detail}", evidence=ev,
                    remediation=remediation, explained_by=failed.explained_by, subject=QUERY,
                    severity=Severity.HIGH)


@check(id="pipeline.probe-vs-production", title="Production remote write is as healthy as the canary",
       category="pipeline", severity="high", codes=[PRODUCTION_PATH_FAILING_CANARY_OK],
       depends_on=["pipeline.canary-probe"], needs=["probe.result"], tags=["probe", "metrics", "prometheus"],
       opt_in=True)
def probe_vs_production(ctx: Any) -> Any:
    """Compares the delivered canary with Prometheus's own view of its remote-write queue
    (failed/dropped samples, growing backlog, lag), read through the API server's pod proxy.

    A healthy canary beside a failing production queue points at the sidecar or at Prometheus
    (the URL Prometheus writes to, the sidecar process, the queue) and not at Azure: the canary
    used the same ingestion URL, and, unless sent ``--as-me``, the same identity.
    """
    if ctx.target.kind != "pod":
        raise Skip("needs a Prometheus pod to compare with (use the discovery flags, not --ingestion-url)")
    r: ProbeResult = ctx.fact("probe.result")
    if not r.delivered:
        raise Skip("the canary was not delivered: nothing to compare")
    metrics = ctx.try_fact("k8s.prometheus_metrics")
    if metrics is None:
        ns, _ = pod_of(ctx.target)
        raise Unknown("could not read Prometheus's own metrics to compare with the canary",
                      needs=f"get pods/proxy in namespace {ns}")
    rates = ctx.try_fact("k8s.prometheus_rates") or {}
    reasons = [f"{q.url}: {why}" for q in metrics.queues for why in queue_problems(q, rates.get(q.url))]
    ev: dict[str, Any] = {"canary": {"identity": r.identity, "total_ms": round(r.total_ms, 1), "nonce": r.nonce},
                          "queues": [q.evidence() for q in metrics.queues]}
    if not metrics.queues:
        raise Skip("Prometheus has no remote-write queue: nothing to compare with the canary")
    if not reasons:
        return ctx.passed(f"the canary and Prometheus's {len(metrics.queues)} remote-write queue(s) are healthy",
                          evidence=ev)
    ev["production_problems"] = reasons
    if r.as_me:
        where = ("the sidecar, its identity, or Prometheus (the canary went with your own identity, so the "
                 "sidecar's identity is not proven)")
    else:
        where = "the sidecar or Prometheus, not Azure (the canary used the same ingestion URL and identity)"
    return ctx.warn(PRODUCTION_PATH_FAILING_CANARY_OK,
                    f"the canary was delivered but Prometheus's own remote write is failing ({reasons[0]}): "
                    f"look at {where}", evidence=ev, explained_by=PRODUCTION_ROOTS)


@check(id="pipeline.probe-vs-checks", title="The probe and the other checks agree", category="pipeline",
       severity="medium", codes=[PROBE_CONTRADICTS_CHECKS], depends_on=["pipeline.canary-probe"],
       tags=["probe"], opt_in=True)
def probe_vs_checks(ctx: Any) -> Any:
    """A delivered canary while another check says ``fail`` about the same path is itself a finding:
    the report says which of the two to believe, and why.

    The probe is direct evidence of delivery for *its* identity and path; a check judges from
    configuration and Azure metadata that can be stale (a role that finished propagating, an
    assignment inherited through a group the doctor cannot see). So the probe wins when it
    went the sidecar's way, and the check wins for the sidecar's identity when the canary was
    sent ``--as-me``, or for throttling (one canary can slip through a rate limit).

    It needs every other check's verdict, so it is evaluated after the run
    (:func:`promrw_doctor.probe.crosscheck.cross_check`, which ``promrw-doctor probe`` applies).
    """
    raise Skip("compares the probe with the other checks' verdicts after the run (promrw-doctor probe "
               "--with-checks)")
