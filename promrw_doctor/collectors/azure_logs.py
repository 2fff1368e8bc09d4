"""The sidecar's log from Log Analytics (Container Insights ``ContainerLogV2``), when kubectl cannot give it.

Why: on-call engineers often may not read ``pods/log``, and a crash-looping or rescheduled
pod has lost the lines that explain it. Container Insights keeps them in the cluster's Log
Analytics workspace; the doctor reads them with azure-monitor-query's ``LogsQueryClient``
(a read, although the query API is a POST), over the same ``--since`` window and line cap.

The workspace is ``--log-analytics-workspace`` (option ``log_analytics_workspace``: its
customer id GUID or ARM id), else the one the AKS cluster's monitoring add-on sends to
(``addonProfiles.omsagent.config.logAnalyticsWorkspaceResourceID``).

Fact (target scope): ``azure.sidecar_logs_la`` (:class:`~.kube_logs.ContainerLog` with
``note`` naming the workspace and ``workspace`` its customer id); ``NotApplicable`` when no
workspace is known. ``pipeline.sidecar-publishing`` reads it (lazily, never gathered up
front) when ``pods/log`` is denied or the container restarted within the window.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from ..core.errors import AccessDenied, NotApplicable, Unreachable
from ..core.facts import FactContext, fact
from ..domain.clouds import CloudProfile
from ..domain.logs import LogLine, line_timestamp
from .azure_arm import ClusterMatch, props
from .azure_http import CREDENTIAL_NEEDS, AzureApiError, AzureHttp, arm_needs, default_verify
from .kube import pod_key
from .kube_logs import DEFAULT_TAIL, ContainerLog

API_LOG_ANALYTICS = "2022-10-01"
LA_READER = "Log Analytics Reader"  # the role an AccessDenied of the query names (checks key on it)
LOGS_ENDPOINTS = {"public": "https://api.loganalytics.io", "usgov": "https://api.loganalytics.us",
                  "china": "https://api.loganalytics.azure.cn"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def logs_endpoint(profile: CloudProfile) -> str | None:
    """The Log Analytics query endpoint of the profile's cloud (``extra.logs_endpoint`` for custom clouds)."""
    explicit = profile.extra.get("logs_endpoint")
    if explicit:
        return str(explicit).rstrip("/")
    base = str(profile.extra.get("base_cloud") or profile.name)
    return LOGS_ENDPOINTS.get(base)


def _kql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sidecar_query(namespace: str, pod: str, container: str, tail: int) -> str:
    """KQL for one container's lines, oldest first (pod name prefix too: the lines of a replaced pod)."""
    return (f"ContainerLogV2\n| where PodNamespace == {_kql_string(namespace)} and PodName == {_kql_string(pod)}"
            f" and ContainerName == {_kql_string(container)}\n"
            f"| project TimeGenerated, LogMessage\n| order by TimeGenerated desc\n| take {int(tail)}\n"
            "| order by TimeGenerated asc")


def _workspace_customer_id(ctx: FactContext, client: AzureHttp) -> tuple[str, str]:
    """(customer id, how it was found)."""
    given = str(ctx.option("log_analytics_workspace") or "").strip()
    if given and _GUID.match(given):
        return given, "--log-analytics-workspace"
    rid = given
    how = "--log-analytics-workspace"
    if not rid:
        match: ClusterMatch = ctx.fact("azure.cluster")
        addons = props(match.cluster).get("addonProfiles") or {}
        oms = next((v for k, v in addons.items() if k.lower() == "omsagent"), None) or {}
        config = oms.get("config") or {}
        rid = str(next((v for k, v in config.items() if k.lower() == "loganalyticsworkspaceresourceid"), "") or "")
        if not oms.get("enabled") or not rid:
            raise NotApplicable(f"cluster {match.name} sends no container logs to Log Analytics (monitoring add-on "
                                "off); pass --log-analytics-workspace")
        how = f"cluster {match.name} monitoring add-on"
    ws = client.arm(rid, API_LOG_ANALYTICS,
                    needs=arm_needs("Microsoft.OperationalInsights/workspaces/read", rid))
    customer = str(props(ws).get("customerId") or "")
    if not customer:
        raise NotApplicable(f"Log Analytics workspace {rid} not found")
    return customer, f"{how} ({rid})"


def _text(message: Any) -> str:
    if isinstance(message, str):
        return message
    return json.dumps(message, separators=(",", ":"), sort_keys=True)


@fact("azure.sidecar_logs_la", scope="target")
def sidecar_logs_la(ctx: FactContext) -> ContainerLog:
    """The sidecar's lines over ``--since`` from ``ContainerLogV2`` in the cluster's Log Analytics workspace."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
    from azure.monitor.query import LogsQueryClient, LogsQueryStatus

    container = ctx.fact("k8s.sidecar_container")
    if container is None:
        raise NotApplicable("the pod has no remote-write sidecar")
    ns, name = pod_key(ctx.fact("k8s.pod"))
    profile: CloudProfile = ctx.fact("azure.cloud")
    endpoint = logs_endpoint(profile)
    if endpoint is None:
        raise NotApplicable(f"no Log Analytics endpoint known for cloud {profile.name} (extra.logs_endpoint)")
    client: AzureHttp = ctx.fact("azure.http")
    customer, how = _workspace_customer_id(ctx, client)
    since = float(ctx.fact("k8s.log_window"))
    try:
        tail = max(1, int(ctx.option("log_tail_lines") or DEFAULT_TAIL))
    except (TypeError, ValueError):
        tail = DEFAULT_TAIL
    kwargs: dict[str, Any] = {"endpoint": endpoint, "retry_total": 1}
    verify = default_verify()
    if isinstance(verify, str):
        kwargs["connection_verify"] = verify
    logs = LogsQueryClient(ctx.fact("azure.credential"), **kwargs)
    needs = f"{LA_READER} on workspace {customer} ({how})"
    try:
        result = logs.query_workspace(customer, sidecar_query(ns, name, str(container.get("name")), tail),
                                      timespan=timedelta(seconds=since))
    except ClientAuthenticationError as exc:
        raise AccessDenied(CREDENTIAL_NEEDS, f"no token for {endpoint}: {exc}") from None
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            raise AccessDenied(needs, f"{exc.status_code}: {exc.message}") from None
        raise AzureApiError("Log Analytics", f"query answered {exc.status_code}: {exc.message}",
                            exc.status_code) from None
    except ServiceRequestError as exc:
        raise Unreachable(f"Log Analytics at {endpoint}", str(exc).splitlines()[0]) from None
    finally:
        logs.close()
    tables = result.tables if result.status == LogsQueryStatus.SUCCESS else (result.partial_data or [])  # type: ignore[union-attr]
    lines: list[LogLine] = []
    for table in tables:
        cols = [str(c) for c in table.columns]
        t_idx = cols.index("TimeGenerated") if "TimeGenerated" in cols else 0
        m_idx = cols.index("LogMessage") if "LogMessage" in cols else len(cols) - 1
        for row in table.rows:
            text = _text(row[m_idx])
            when = row[t_idx]
            ts = when.timestamp() if hasattr(when, "timestamp") else line_timestamp(text, ctx.now)
            lines.extend(LogLine(part, ts) for part in text.splitlines() if part.strip())
    note = f"from Log Analytics ContainerLogV2, workspace {customer} ({how})"
    return ContainerLog(f"{ns}/{name}", str(container.get("name")), False, tuple(lines), since, tail, note=note,
                        workspace=customer)
