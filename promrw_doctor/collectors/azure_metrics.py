"""Workspace platform metrics (throttling, quota) and the workspace query endpoint's answer to the doctor.

Throttling shows first in the workspace's own metrics: ``ActiveTimeSeriesPercentUtilization``
and ``EventsPerMinuteIngestedPercentUtilization`` at or above 100 % mean Azure is dropping
samples (and ingestion answers 429); above 80 % is the documented alert threshold. They are
read with azure-monitor-querymetrics' ``MetricsClient`` from the regional metrics data plane
of the profile's cloud, max over the last hour at one-minute grain.

Facts (target scope): ``azure.workspace_metrics`` (:class:`WorkspaceMetrics`),
``azure.query_access`` (:class:`QueryAccess`, only with ``--probe``: the probe reads its
canary back through the query endpoint with the doctor's identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..core.errors import AccessDenied, NotApplicable, Unreachable
from ..core.facts import FactContext, fact
from ..domain.clouds import CloudProfile
from .azure_arm import props
from .azure_http import CREDENTIAL_NEEDS, AzureApiError, AzureHttp, arm_needs, default_verify

NAMESPACE = "Microsoft.Monitor/accounts"
UTILIZATION_METRICS = ("ActiveTimeSeriesPercentUtilization", "EventsPerMinuteIngestedPercentUtilization")
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class MetricSummary:
    name: str
    maximum: float | None  # max over the window (None: no data points)
    latest: float | None
    peak_at: str | None = None
    points: int = 0


@dataclass(frozen=True)
class WorkspaceMetrics:
    workspace_id: str
    region: str
    endpoint: str
    metrics: dict[str, MetricSummary] = field(default_factory=dict)


def _workspace(ctx: FactContext) -> dict[str, Any]:
    ws = ctx.fact("azure.workspace")
    if not ws:
        raise NotApplicable("the DCR sends to no Azure Monitor workspace the doctor could read")
    found: dict[str, Any] = ws
    return found


def summarize(result: Any, names: tuple[str, ...]) -> dict[str, MetricSummary]:
    """Max (and latest value) of each metric in a ``MetricsQueryResult``."""
    out: dict[str, MetricSummary] = {}
    for metric in getattr(result, "metrics", None) or []:
        values: list[tuple[str, float]] = []
        for ts in metric.timeseries or []:
            for point in ts.data or []:
                v = point.maximum if point.maximum is not None else point.average
                if v is not None:
                    values.append((str(point.timestamp), float(v)))
        peak = max(values, key=lambda x: x[1]) if values else None
        out[metric.name] = MetricSummary(metric.name, peak[1] if peak else None,
                                         values[-1][1] if values else None, peak[0] if peak else None, len(values))
    for n in names:
        out.setdefault(n, MetricSummary(n, None, None))
    return out


@fact("azure.workspace_metrics", scope="target")
def workspace_metrics(ctx: FactContext) -> WorkspaceMetrics:
    """Utilization metrics of the DCR's workspace over the last hour (``MetricsClient.query_resources``)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    ws = _workspace(ctx)
    profile: CloudProfile = ctx.fact("azure.cloud")
    ws_id = str(ws.get("id") or "")
    region = str(ws.get("location") or "").replace(" ", "").lower()
    endpoint = profile.metrics_endpoint(region)
    needs = arm_needs("Microsoft.Insights/metrics/read", ws_id, role="Monitoring Reader")
    from azure.monitor.querymetrics import MetricAggregationType, MetricsClient

    kwargs: dict[str, Any] = {"audience": profile.metrics_audience, "retry_total": 1}
    verify = default_verify()
    if isinstance(verify, str):
        kwargs["connection_verify"] = verify
    client = MetricsClient(endpoint, ctx.fact("azure.credential"), **kwargs)
    try:
        results = client.query_resources(
            resource_ids=[ws_id], metric_namespace=NAMESPACE, metric_names=list(UTILIZATION_METRICS),
            timespan=WINDOW, granularity=timedelta(minutes=1), aggregations=[MetricAggregationType.MAXIMUM])
    except ClientAuthenticationError as exc:
        status = getattr(exc, "status_code", None)
        if status in (401, 403):
            raise AccessDenied(needs, f"{status}: {_line(exc)}") from None
        raise AccessDenied(CREDENTIAL_NEEDS, f"no token for {profile.metrics_audience}: {_line(exc)}") from None
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            raise AccessDenied(needs, f"{exc.status_code}: {_line(exc)}") from None
        raise AzureApiError("metrics", f"metrics:getBatch answered {exc.status_code}: {_line(exc)}",
                            exc.status_code) from None
    except ServiceRequestError as exc:
        raise Unreachable(f"the metrics data plane at {endpoint}", _line(exc)) from None
    finally:
        client.close()
    result = results[0] if results else None  # one resource asked for, one result
    return WorkspaceMetrics(ws_id, region, endpoint, summarize(result, UTILIZATION_METRICS))


def _line(exc: BaseException) -> str:
    from ..core.redact import redact

    msg = getattr(exc, "message", None) or str(exc)
    first = next((ln.strip() for ln in str(msg).splitlines() if ln.strip()), type(exc).__name__)
    return redact(first)[:300]


@dataclass(frozen=True)
class QueryAccess:
    endpoint: str
    status: int
    ok: bool
    code: str = ""
    message: str = ""
    principal: str | None = None  # the doctor's object id (from its own token's claims)


@fact("azure.query_access", scope="target")
def query_access(ctx: FactContext) -> QueryAccess:
    """Can the doctor's identity query the workspace (what ``--probe`` needs)? One PromQL ``vector(1)``."""
    if not ctx.option("probe"):
        raise NotApplicable("only needed for --probe (it reads its canary back through the query endpoint)")
    ws = _workspace(ctx)
    endpoint = str((props(ws).get("metrics") or {}).get("prometheusQueryEndpoint") or "").rstrip("/")
    if not endpoint:
        raise NotApplicable("the workspace has no Prometheus query endpoint")
    import requests

    client: AzureHttp = ctx.fact("azure.http")
    profile: CloudProfile = ctx.fact("azure.cloud")
    token = client.token(profile.query_audience)
    claims = client.doctor_claims(profile.query_audience)
    url = f"{endpoint}/api/v1/query"
    try:
        resp = client.session.get(url, params={"query": "vector(1)"}, timeout=client.timeout, verify=client.verify,
                                  headers={"Authorization": f"Bearer {token}"})
    except requests.exceptions.RequestException as exc:
        raise Unreachable(f"the workspace query endpoint {endpoint}", _line(exc)) from None
    code, message = "", ""
    try:
        body = resp.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            code, message = str(err.get("code") or ""), str(err.get("message") or "")
        elif isinstance(err, str):
            message = err
    except ValueError:
        message = resp.text[:200]
    oid = getattr(claims, "oid", None) if claims is not None else None
    return QueryAccess(endpoint, resp.status_code, resp.status_code == 200, code, message[:300], oid)
