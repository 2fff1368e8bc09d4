"""The sidecar's INGESTION_URL and the token audience it implies."""

from __future__ import annotations

from collections.abc import Iterable

from promrw_doctor.core import Finding, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.domain.clouds import CloudProfile
from promrw_doctor.domain.clouds import scope as audience_scope
from promrw_doctor.domain.ingestion_url import (
    DCR_IMMUTABLE_ID_RE,
    example_url,
    ingestion_url_problems,
    parse_ingestion_url,
)
from promrw_doctor.domain.sidecar import audience_problems, find_placeholder
from promrw_doctor.lint.loader import DocumentSet
from promrw_doctor.lint.views import Sidecar, all_sidecars, to_yaml

URL_DOCS = "https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write"
AUDIENCE_DOCS = "https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write-managed-identity"


def _docs(ctx: CheckContext) -> DocumentSet:
    docs: DocumentSet = ctx.fact("lint.documents")
    return docs


def _extra_clouds(ctx: CheckContext) -> tuple[CloudProfile, ...]:
    value = ctx.option("extra_clouds") or ()
    if isinstance(value, CloudProfile):
        return (value,)
    return tuple(v for v in value if isinstance(v, CloudProfile)) if isinstance(value, Iterable) else ()


def _usable_url(s: Sidecar) -> str | None:
    """The INGESTION_URL if lint can judge it (set, not valueFrom, not only a placeholder)."""
    url = s.env.get("INGESTION_URL")
    if url is None or not url.strip():
        return None
    if find_placeholder(url) is not None and "://" not in url:
        return None
    return url


@check(
    id="lint.ingestion-url",
    title="INGESTION_URL is a well-formed metrics ingestion URL",
    category="lint",
    severity="critical",
    codes=["INGESTION_URL_INVALID"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=URL_DOCS,
    tags=["sidecar"],
)
def ingestion_url(ctx: CheckContext) -> list[Finding]:
    """INGESTION_URL must be the workspace's metrics ingestion URL, exactly in the documented form.

    `https://<dce>.<region>-1.metrics.ingest.monitor.azure.{com,us,cn}/dataCollectionRules/dcr-<32 hex>`
    `/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24` (or `2021-11-01-preview`).

    The sidecar forwards every write to it verbatim: the workspace's query endpoint, a DCR name
    instead of its immutable id, another stream, or a missing api-version make every write fail.
    An unknown but well-formed api-version is a warning (a newer version may exist).
    """
    extra = _extra_clouds(ctx)
    out: list[Finding] = []
    skipped: list[str] = []
    for s in all_sidecars(_docs(ctx)):
        subject = f"{s.workload.label} container {s.name}"
        url = _usable_url(s)
        if url is None:
            skipped.append(subject)
            continue
        problems = ingestion_url_problems(url, extra)
        if not problems:
            out.append(ctx.passed(f"{subject}: INGESTION_URL is well formed", location=s.env_loc("INGESTION_URL"),
                                  subject=subject))
            continue
        host, dcr = "<dce>.<region>-1.metrics.ingest.monitor.azure.com", "<DCR immutable id>"
        try:
            parsed = parse_ingestion_url(url, extra)
            if parsed.cloud is not None:
                host = parsed.netloc
            if parsed.dcr_immutable_id and DCR_IMMUTABLE_ID_RE.match(parsed.dcr_immutable_id):
                dcr = parsed.dcr_immutable_id
        except ValueError:
            pass
        fix = [to_yaml([{"name": "INGESTION_URL", "value": example_url(host, dcr)}]),
               "az monitor data-collection rule show -g <resource-group> -n <dcr-name> --query immutableId -o tsv"]
        for p in problems:
            if p.field == "placeholder":
                continue  # lint.placeholders reports it with its line
            make = ctx.warn if p.severity == "warning" else ctx.fail
            out.append(make(
                "INGESTION_URL_INVALID", f"{subject}: {p.message}",
                location=s.env_loc("INGESTION_URL"), subject=subject,
                evidence={"url": url, "part": p.field}, remediation=fix,
            ))
        if all(p.field == "placeholder" for p in problems):
            skipped.append(subject)
    if not out:
        raise Skip("no INGESTION_URL to judge (unset, from valueFrom, or still a placeholder: "
                   "see lint.sidecar-env / lint.placeholders)")
    return out


@check(
    id="lint.audience",
    title="Token audience matches the ingestion endpoint's cloud",
    category="lint",
    severity="critical",
    codes=["AUDIENCE_MISMATCH"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=AUDIENCE_DOCS,
    tags=["sidecar", "sovereign-cloud"],
)
def audience(ctx: CheckContext) -> list[Finding]:
    """A `.azure.us`/`.azure.cn` ingestion host needs INGESTION_AAD_AUDIENCE (or CLOUD) for that cloud.

    Without it the sidecar asks Entra for a token for `https://monitor.azure.com`, which a
    sovereign-cloud endpoint rejects with 401. An audience for the wrong cloud fails the same
    way. An audience without the `/.default` suffix is a warning: the workload-identity article
    says token acquisition fails without it (the managed-identity article omits it). Both CLOUD
    spellings (`AZUREGOVERNMENT`, `AZURE_GOVERNMENT`) are accepted.
    """
    extra = _extra_clouds(ctx)
    out: list[Finding] = []
    for s in all_sidecars(_docs(ctx)):
        subject = f"{s.workload.label} container {s.name}"
        url = _usable_url(s)
        if url is None:
            continue
        try:
            parsed = parse_ingestion_url(url, extra)
        except ValueError:
            continue
        settings = s.settings
        problems = audience_problems(settings, parsed.host, extra)
        if not problems:
            where = parsed.cloud.name if parsed.cloud else "unknown"
            field = "INGESTION_AAD_AUDIENCE" if settings.audience else "INGESTION_URL"
            out.append(ctx.passed(f"{subject}: audience fits the {where} ingestion host",
                                  location=s.env_loc(field), subject=subject))
            continue
        expected = audience_scope(parsed.cloud.ingestion_audience) if parsed.cloud else "<audience>/.default"
        for p in problems:
            make = ctx.warn if p.severity == "warning" else ctx.fail
            field = p.field if p.field in s.env else "INGESTION_URL"
            out.append(make(
                "AUDIENCE_MISMATCH", f"{subject}: {p.message}",
                location=s.env_loc(field), subject=subject,
                evidence={"ingestion_host": parsed.host, "cloud": parsed.cloud.name if parsed.cloud else None,
                          "INGESTION_AAD_AUDIENCE": settings.audience, "CLOUD": settings.cloud},
                remediation=[f"add to {s.dotted('env')}:\n"
                             + to_yaml([{"name": "INGESTION_AAD_AUDIENCE", "value": expected}])],
            ))
    if not out:
        raise Skip("no usable INGESTION_URL to derive the cloud from")
    return out
