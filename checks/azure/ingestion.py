"""The live ingestion path: the URL itself, the DCR it names, and the DCE/stream the DCR expects."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from promrw_doctor.core import Severity, Unknown, check
from promrw_doctor.domain.ingestion_url import STREAM, example_url

from ._common import helm_env, pod_of


@check(id="azure.ingestion-url", title="INGESTION_URL is a valid metrics ingestion URL", category="azure",
       severity="high", codes=["INGESTION_URL_INVALID"], needs=["azure.ingestion_url"], tags=["azure", "url"])
def ingestion_url(ctx: Any) -> Any:
    """The running sidecar's ``INGESTION_URL`` has the documented form ``https://<DCE host>/dataCollectionRules/
    dcr-<32 hex>/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=…``.

    Why: the sidecar starts with any value; a placeholder, a DCR name instead of its immutable
    id, the workspace's query endpoint or a missing api-version all surface later as 404/400/401
    on every write. Hosts of a custom cloud profile (air-gapped clouds, the lab) count as
    ingestion hosts. Warnings (an unknown but well-formed api-version, odd case) do not block
    the Azure lookups.
    """
    url = ctx.fact("azure.ingestion_url")
    ns, _pod = pod_of(ctx.target)
    errors = [p for p in url.problems if p.severity == "error"]
    warnings = [p for p in url.problems if p.severity != "error"]
    evidence: dict[str, Any] = {"ingestion_url": url.raw}
    if url.parsed is not None:
        evidence["host"] = url.parsed.netloc
        evidence["dcr_immutable_id"] = url.parsed.dcr_immutable_id
        evidence["api_version"] = url.parsed.api_version
        evidence["cloud"] = url.parsed.cloud.name if url.parsed.cloud else None
    evidence = {k: v for k, v in evidence.items() if v is not None}
    if errors or warnings:
        evidence["problems"] = [f"{p.field}: {p.message}" for p in (*errors, *warnings)]
    if errors:
        host = (url.parsed.netloc if url.parsed and url.parsed.cloud
                else "<dce>.<region>-1.metrics.ingest.monitor.azure.com")
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return ctx.fail("INGESTION_URL_INVALID", f"INGESTION_URL: {errors[0].message}{more}", evidence=evidence,
                        remediation=helm_env(ns, {"INGESTION_URL": example_url(host)}))
    if warnings:
        good = example_url(url.parsed.netloc if url.parsed else "<host>",
                           (url.parsed.dcr_immutable_id if url.parsed else None) or "dcr-<id>")
        return ctx.warn("INGESTION_URL_INVALID", f"INGESTION_URL: {warnings[0].message}", evidence=evidence,
                        severity=Severity.LOW, remediation=helm_env(ns, {"INGESTION_URL": good}))
    return ctx.passed(f"INGESTION_URL is well formed (DCR {url.parsed.dcr_immutable_id if url.parsed else '?'})",
                      evidence=evidence)


@check(id="azure.dcr-found", title="The DCR in INGESTION_URL exists", category="azure", severity="critical",
       codes=["DCR_NOT_FOUND"], depends_on=["azure.ingestion-url"], needs=["azure.dcr"], tags=["azure", "dcr"])
def dcr_found(ctx: Any) -> Any:
    """The DCR immutable id in ``INGESTION_URL`` resolves to a data collection rule the doctor can see.

    Why: ingestion answers 404 for an unknown DCR; a copy from another workspace or a recreated
    DCR (new immutable id) are the usual reasons. The doctor lists the DCRs of each subscription
    it searches (``--subscription``, ``AZURE_SUBSCRIPTION_ID``, the subscriptions it may list,
    and those the cluster names) and says where it looked.
    """
    lookup = ctx.fact("azure.dcr")
    evidence = {"dcr_immutable_id": lookup.immutable_id, "searched": lookup.where(),
                "subscriptions_from": lookup.scope_source}
    if lookup.dcr is None:
        subs = " ".join(f"--subscription {s}" for s in lookup.searched[:1]) or "--subscription <id>"
        return ctx.fail(
            "DCR_NOT_FOUND",
            f"no data collection rule has immutable id {lookup.immutable_id} ({lookup.where()})",
            evidence=evidence,
            remediation=[
                f"az monitor data-collection rule list {subs} --query \"[].{{name:name, immutableId:immutableId, "
                "id:id}}\" -o table",
                "az monitor account show -n <workspace> -g <resource group> --query "
                "defaultIngestionSettings.dataCollectionRuleResourceId",
                "put the workspace DCR's immutableId into INGESTION_URL (Helm values, prom-remotewrite env)",
            ])
    evidence["dcr"] = lookup.id
    return ctx.passed(f"DCR {lookup.name} ({lookup.immutable_id}) exists", evidence=evidence)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port


@check(id="azure.dce-match", title="The ingestion host is the DCR's data collection endpoint", category="azure",
       severity="high", codes=["DCE_MISMATCH"], depends_on=["azure.dcr-found"],
       needs=["azure.dcr", "azure.dce", "azure.ingestion_url"], tags=["azure", "dcr"])
def dce_match(ctx: Any) -> Any:
    """The URL's host is the ``metricsIngestion.endpoint`` of the DCE the DCR references, and the DCR
    accepts the ``Microsoft-PrometheusMetrics`` stream.

    Why: ingestion routes by host and DCR together; a URL that pairs one workspace's endpoint
    with another's DCR, or a DCR made for logs, is refused.
    """
    lookup = ctx.fact("azure.dcr")
    dce = ctx.fact("azure.dce")
    url = ctx.fact("azure.ingestion_url")
    evidence: dict[str, Any] = {"dcr": lookup.id, "streams": lookup.streams}
    if lookup.streams and STREAM not in lookup.streams:
        return ctx.fail("DCE_MISMATCH", f"DCR {lookup.name} does not accept the {STREAM} stream "
                                        f"(streams: {', '.join(lookup.streams)}); it is not a Prometheus DCR",
                        evidence=evidence,
                        remediation=["use the Azure Monitor workspace's default DCR (its Overview page shows the "
                                     "matching Metrics ingestion endpoint)"])
    if dce is None:
        return ctx.fail("DCE_MISMATCH", f"DCR {lookup.name} references no data collection endpoint",
                        evidence=evidence,
                        remediation=["az monitor data-collection rule update --ids <DCR id> "
                                     "--data-collection-endpoint-id <DCE id>  (or use the workspace's default DCR)"])
    endpoint = str(((dce.get("properties") or {}).get("metricsIngestion") or {}).get("endpoint") or "")
    evidence["dce"] = dce.get("id")
    if not endpoint:
        raise Unknown(f"DCE {dce.get('name')} shows no metricsIngestion.endpoint",
                      needs="DCE api-version >= 2021-09-01")
    evidence["dce_metrics_ingestion_endpoint"] = endpoint
    if url.parsed is None:
        raise Unknown("INGESTION_URL is not a URL")
    have = (url.parsed.host, url.parsed.effective_port)
    want = _host_port(endpoint)
    evidence["ingestion_host"] = url.parsed.netloc
    if have != want:
        return ctx.fail("DCE_MISMATCH",
                        f"INGESTION_URL's host {url.parsed.netloc} is not the metrics ingestion endpoint {endpoint} "
                        f"of DCE {dce.get('name')}, which DCR {lookup.name} uses",
                        evidence=evidence,
                        remediation=[f"az monitor data-collection endpoint show --ids {dce.get('id')} --query "
                                     "metricsIngestion.endpoint",
                                     "set INGESTION_URL to "
                                     + example_url(urlsplit(endpoint).netloc, lookup.immutable_id)])
    return ctx.passed(f"ingestion host {url.parsed.netloc} is DCE {dce.get('name')}'s metrics ingestion endpoint",
                      evidence=evidence)
