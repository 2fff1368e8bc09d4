"""Cloud and capacity: the token audience the sidecar asks for, workspace quota, the doctor's query access."""

from __future__ import annotations

from typing import Any

from promrw_doctor.collectors.azure import extra_clouds
from promrw_doctor.core import Severity, Unknown, check
from promrw_doctor.domain.clouds import BUILTIN, scope
from promrw_doctor.domain.ingestion_url import cloud_owning_host
from promrw_doctor.domain.sidecar import audience_problems, effective_ingestion_audience

from ._common import helm_env, pod_of

# CLOUD values the sidecar documents, per built-in cloud (the first spelling).
_CLOUD_ENV = {"public": "AZUREPUBLICCLOUD", "usgov": "AZUREUSGOVERNMENT", "china": "AZURECHINACLOUD"}


@check(id="azure.audience", title="The sidecar's token audience belongs to the ingestion host's cloud",
       category="azure", severity="critical", codes=["AUDIENCE_MISMATCH"],
       needs=["azure.ingestion_url", "sidecar.settings", "azure.cloud"], tags=["azure", "cloud", "token"])
def audience(ctx: Any) -> Any:
    """The audience the sidecar will request (``INGESTION_AAD_AUDIENCE``, else the one ``CLOUD`` selects,
    else the public cloud's) is the ingestion audience of the cloud that owns the ingestion host.

    Why: the sidecar does not derive the audience from the host; in US Gov, China or an
    air-gapped cloud it mints public-cloud tokens unless told otherwise, and every write is
    refused with 401. The custom cloud profile (``--cloud-config``) is consulted for hosts the
    built-in clouds do not own.
    """
    url = ctx.fact("azure.ingestion_url")
    settings = ctx.fact("sidecar.settings")
    profile = ctx.fact("azure.cloud")
    if url.parsed is None:
        raise Unknown("INGESTION_URL is not a URL (see azure.ingestion-url)")
    extra = extra_clouds(profile)
    host_cloud = cloud_owning_host(url.parsed.host, extra)
    if host_cloud is None:
        raise Unknown(f"no known cloud owns the ingestion host {url.parsed.host}",
                      needs="a cloud profile (--cloud-config) listing its ingestion_host_suffixes")
    effective = effective_ingestion_audience(settings, host_cloud)
    evidence: dict[str, Any] = {"ingestion_host": url.parsed.netloc, "host_cloud": host_cloud.name,
                                "expected_audience": scope(host_cloud.ingestion_audience),
                                "sidecar_audience": effective, "INGESTION_AAD_AUDIENCE": settings.audience,
                                "CLOUD": settings.cloud}
    evidence = {k: v for k, v in evidence.items() if v is not None}
    problems = audience_problems(settings, url.parsed.host, extra)
    errors = [p for p in problems if p.severity == "error"]
    ns, _ = pod_of(ctx.target)
    fix = {"INGESTION_AAD_AUDIENCE": scope(host_cloud.ingestion_audience)}
    if host_cloud.name in BUILTIN:
        fix["CLOUD"] = _CLOUD_ENV[host_cloud.name]
    if errors:
        return ctx.fail("AUDIENCE_MISMATCH", errors[0].message, evidence=evidence, remediation=helm_env(ns, fix))
    if problems:
        evidence["notes"] = [p.message for p in problems]
    return ctx.passed(f"the sidecar asks for {effective}, the {host_cloud.name} ingestion audience",
                      evidence=evidence)


def _percent(value: float | None) -> str:
    return "no data" if value is None else f"{value:.0f} %"


@check(id="azure.workspace-quota", title="The workspace is within its ingestion quota", category="azure",
       severity="high", codes=["INGESTION_THROTTLED", "QUOTA_NEAR_LIMIT"], depends_on=["azure.dcr-found"],
       needs=["azure.workspace_metrics"], tags=["azure", "quota"])
def workspace_quota(ctx: Any) -> Any:
    """The workspace's ``ActiveTimeSeriesPercentUtilization`` and ``EventsPerMinuteIngestedPercentUtilization``
    stayed below 100 % (throttling) and 80 % (the documented alert level) over the last hour.

    Why: above its quota the workspace drops samples and ingestion answers 429; nothing in the
    cluster shows more than a rising failure count. Read with ``MetricsClient`` from the regional
    metrics data plane (thresholds: options ``quota_warn_percent``/``quota_throttle_percent``).
    """
    data = ctx.fact("azure.workspace_metrics")
    warn_at = float(ctx.option("quota_warn_percent", 80.0) or 80.0)
    throttle_at = float(ctx.option("quota_throttle_percent", 100.0) or 100.0)
    evidence: dict[str, Any] = {"workspace": data.workspace_id, "window": "last hour, max per minute",
                                "metrics_endpoint": data.endpoint}
    for name, m in data.metrics.items():
        evidence[name] = _percent(m.maximum) + (f" (peak at {m.peak_at})" if m.peak_at else "")
    worst = max((m for m in data.metrics.values() if m.maximum is not None), key=lambda m: m.maximum or 0.0,
                default=None)
    check_cmd = (f"az monitor metrics list --resource {data.workspace_id} --metric {worst.name if worst else ''} "
                 "--interval PT1M --aggregation Maximum --offset 1h")
    if worst is None:
        return ctx.passed("the workspace reported no utilization data in the last hour", evidence=evidence)
    assert worst.maximum is not None
    if worst.maximum >= throttle_at:
        return ctx.fail("INGESTION_THROTTLED",
                        f"{worst.name} peaked at {worst.maximum:.0f} % in the last hour: the workspace is over its "
                        "quota and drops samples (ingestion answers 429)",
                        evidence=evidence,
                        remediation=[check_cmd, "reduce series/samples (metric_relabel_configs drop, longer "
                                     "scrape_interval) or open a support request (quota type \"Managed Prometheus\")"])
    if worst.maximum >= warn_at:
        return ctx.warn("QUOTA_NEAR_LIMIT", f"{worst.name} peaked at {worst.maximum:.0f} % in the last hour "
                                            f"(throttling starts at {throttle_at:.0f} %)",
                        evidence=evidence, severity=Severity.MEDIUM,
                        remediation=[check_cmd, "plan a quota increase (support request, quota type "
                                                "\"Managed Prometheus\") or reduce the series/sample rate"])
    return ctx.passed(f"utilization at most {worst.maximum:.0f} % in the last hour", evidence=evidence)


@check(id="azure.query-access", title="The doctor's identity can query the workspace (for --probe)",
       category="azure", severity="medium", codes=["QUERY_ACCESS_MISSING"],
       needs=["azure.query_access"], tags=["azure", "probe", "rbac"])
def query_access(ctx: Any) -> Any:
    """With ``--probe``: the identity running the doctor can read the workspace's Prometheus query endpoint
    (Monitoring Data Reader on the workspace), with one ``vector(1)`` query.

    Why: the probe writes a canary and reads it back; without query access it can prove the
    write but not the arrival. This is about the doctor's own identity, so it warns.
    """
    access = ctx.fact("azure.query_access")
    evidence = {"query_endpoint": access.endpoint, "status": access.status, "doctor_object_id": access.principal,
                "error": f"{access.code}: {access.message}".strip(": ") or None}
    evidence = {k: v for k, v in evidence.items() if v}
    if access.ok:
        return ctx.passed("the doctor's identity can query the workspace", evidence=evidence)
    if access.status == 403:
        ws = ctx.try_fact("azure.workspace") or {}
        ws_id = ws.get("id") or "<workspace id>"
        return ctx.warn("QUERY_ACCESS_MISSING",
                        "the doctor's identity may not query the workspace (403): --probe cannot confirm its "
                        "canary arrived", evidence=evidence,
                        remediation=[f"az role assignment create --assignee {access.principal or '<doctor object id>'} "
                                     f"--role \"Monitoring Data Reader\" --scope {ws_id}"])
    if access.status == 401:
        raise Unknown(f"the query endpoint rejected the doctor's token (401 {access.code})",
                      needs="a token the workspace query endpoint accepts (the profile's query_audience)")
    raise Unknown(f"the query endpoint answered {access.status} {access.code}")
