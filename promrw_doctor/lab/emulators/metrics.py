"""The regional Azure Monitor metrics data plane (``metrics:getBatch``) for workspace platform metrics.

When ingestion is throttled, the workspace's own metrics say so before anything else:
``ActiveTimeSeriesPercentUtilization`` / ``EventsPerMinuteIngestedPercentUtilization``
above 100 % means Azure is dropping samples. The doctor reads them with the real
``azure.monitor.querymetrics.MetricsClient(endpoint, credential, audience=...)``, whose
only request is::

    POST /subscriptions/{subscriptionId}/metrics:getBatch?api-version=2024-02-01
         &metricnamespace=Microsoft.Monitor/accounts&metricnames=A,B
         [&starttime=...&endtime=...&interval=PT1M&aggregation=average,maximum]
    {"resourceids": ["/subscriptions/.../providers/Microsoft.Monitor/accounts/<name>"]}

A read despite the POST, so it is logged as one and never refused as a write.

Values come from ``Workspace.metrics``: one value per minute, the last element being the
current minute (a single value means "constant over the last hour"). Absent series are
derived from their siblings: the limits default to 1,000,000 (the documented default
quota), counts = percent x limit / 100 and percent = count / limit x 100. A minute
without data yields a point with only ``timeStamp`` (and ``count: 0``), as Azure does.

Permission switch: ``metrics:read`` (403 ``AuthorizationFailed``, ARM-style envelope).
Audience: the cloud profile's ``metrics_audience`` (``https://metrics.monitor.azure.com``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from ...domain.clouds import PUBLIC
from ..azure_state import AzureState, Workspace
from ..tokens import TokenIssuer
from .arm import MISSING_API_VERSION, ArmFlavor, parse_resource_id
from .azure_common import ServiceError, make_service_app, require

NAMESPACE = "Microsoft.Monitor/accounts"
API_VERSIONS = ("2023-05-01-preview", "2023-10-01", "2024-02-01")
DEFAULT_LIMIT = 1_000_000.0
MAX_RESOURCES = 50
AGGREGATIONS = ("average", "minimum", "maximum", "total", "count")


@dataclass(frozen=True)
class MetricDef:
    name: str
    display: str
    unit: str
    primary: str  # primary aggregation (returned when the request names none)
    description: str


METRICS: dict[str, MetricDef] = {m.name.lower(): m for m in (
    MetricDef("ActiveTimeSeries", "Active Time Series", "Count", "maximum",
              "Number of active time series in the workspace."),
    MetricDef("ActiveTimeSeriesLimit", "Active Time Series Limit", "Count", "maximum",
              "Limit of active time series for the workspace."),
    MetricDef("ActiveTimeSeriesPercentUtilization", "Active Time Series % Utilization", "Percent", "average",
              "Percentage of the active time series limit in use."),
    MetricDef("EventsPerMinuteIngested", "Events Per Minute Ingested", "Count", "maximum",
              "Number of events (samples) ingested per minute."),
    MetricDef("EventsPerMinuteIngestedLimit", "Events Per Minute Ingested Limit", "Count", "maximum",
              "Limit of events (samples) ingested per minute."),
    MetricDef("EventsPerMinuteIngestedPercentUtilization", "Events Per Minute Ingested % Utilization",
              "Percent", "average", "Percentage of the events-per-minute limit in use."),
)}
_FAMILIES = (("ActiveTimeSeries", "ActiveTimeSeriesLimit", "ActiveTimeSeriesPercentUtilization"),
             ("EventsPerMinuteIngested", "EventsPerMinuteIngestedLimit",
              "EventsPerMinuteIngestedPercentUtilization"))


# ------------------------------------------------------------------------------------------ values

def _lookup(ws: Workspace, name: str) -> list[float] | None:
    for k, v in ws.metrics.items():
        if k.lower() == name.lower():
            return [float(x) for x in v] if v else None
    return None


def _combine(a: list[float], b: list[float], op: Any) -> list[float]:
    """Element-wise ``op`` aligned on the most recent minute; a 1-element list broadcasts."""
    if len(a) == 1 and len(b) == 1:
        return [op(a[0], b[0])]
    n = max(len(a), len(b)) if 1 in (len(a), len(b)) else min(len(a), len(b))

    def at(xs: list[float], i: int) -> float:  # i counts back from the most recent minute
        return xs[0] if len(xs) == 1 else xs[len(xs) - 1 - i]

    return [op(at(a, n - 1 - j), at(b, n - 1 - j)) for j in range(n)]


def series(ws: Workspace, name: str) -> list[float] | None:
    """Per-minute values of ``name`` (most recent last), derived from its family when absent."""
    direct = _lookup(ws, name)
    if direct is not None:
        return direct
    for count, limit, pct in _FAMILIES:
        if name.lower() not in (count.lower(), limit.lower(), pct.lower()):
            continue
        lim = _lookup(ws, limit) or [DEFAULT_LIMIT]
        if name.lower() == limit.lower():
            return lim
        if name.lower() == count.lower():
            p = _lookup(ws, pct)
            return _combine(p, lim, lambda x, y: round(x * y / 100.0)) if p is not None else None
        c = _lookup(ws, count)
        return _combine(c, lim, lambda x, y: (x / y * 100.0) if y else 0.0) if c is not None else None
    return None


def _minute_value(values: list[float], minute: datetime, now_minute: datetime) -> float | None:
    back = int((now_minute - minute) / timedelta(minutes=1))
    if back < 0:
        return None
    if len(values) == 1:
        return values[0] if back < 60 else None
    return values[len(values) - 1 - back] if back < len(values) else None


def _aggregate(samples: list[float], aggregation: str) -> float | None:
    if aggregation == "count":
        return float(len(samples))
    if not samples:
        return None
    if aggregation == "average":
        return sum(samples) / len(samples)
    if aggregation == "minimum":
        return min(samples)
    if aggregation == "maximum":
        return max(samples)
    return float(sum(samples))  # total


# ------------------------------------------------------------------------------------------ parsing

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$", re.I)


def _parse_interval(raw: str | None, span: timedelta) -> tuple[timedelta, str]:
    if not raw:
        return timedelta(minutes=1), "PT1M"
    if raw.upper() == "FULL":
        minutes = max(1, math.ceil(span / timedelta(minutes=1)))
        return timedelta(minutes=minutes), "FULL"
    m = _DURATION.match(raw)
    if not m or not any(m.groups()):
        raise ServiceError(400, "BadRequest",
                           f"Invalid interval '{raw}'; use an ISO 8601 duration such as PT1M.")
    d, h, mi = (int(g or 0) for g in m.groups())
    step = timedelta(days=d, hours=h, minutes=mi)
    if step < timedelta(minutes=1):
        raise ServiceError(400, "BadRequest", f"Invalid interval '{raw}'; the smallest grain is PT1M.")
    return step, raw.upper()


def _parse_time(raw: str, what: str) -> datetime:
    try:
        dt = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(400, "BadRequest", f"Invalid {what} '{raw}'.") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _floor_minute(dt: datetime) -> datetime:
    return dt.replace(second=0, microsecond=0)


# ------------------------------------------------------------------------------------------ handler

def _metric_result(ws: Workspace, m: MetricDef, aggregations: list[str], start: datetime, end: datetime,
                   step: timedelta, now: datetime) -> dict[str, Any]:
    values = series(ws, m.name)
    now_minute = _floor_minute(now)
    data = []
    t = _floor_minute(start)
    while t < end:
        samples: list[float] = []
        if values is not None:
            minute = t
            while minute < min(t + step, end):
                v = _minute_value(values, minute, now_minute)
                if v is not None:
                    samples.append(v)
                minute += timedelta(minutes=1)
        point: dict[str, Any] = {"timeStamp": _iso(t)}
        for agg in aggregations:
            v = _aggregate(samples, agg)
            if v is not None:
                point[agg] = v
        data.append(point)
        t += step
    return {
        "id": f"{ws.id}/providers/Microsoft.Insights/metrics/{m.name}",
        "type": "Microsoft.Insights/metrics",
        "name": {"value": m.name, "localizedValue": m.display},
        "displayDescription": m.description,
        "unit": m.unit,
        "timeseries": [{"metadatavalues": [], "data": data}],
        "errorCode": "Success",
    }


def make_app(
    state: AzureState,
    issuer: TokenIssuer,
    *,
    audience: str = PUBLIC.metrics_audience,
    extra_audiences: Iterable[str] = (),
) -> web.Application:
    """The metrics data-plane emulator (one port serves every region of the lab)."""
    audiences = [audience, *extra_audiences]
    flavor = ArmFlavor(state, audiences)
    flavor.name = "metrics"
    flavor.allow = "POST"
    route = re.compile(r"^/subscriptions/([^/]+)/metrics:getbatch/?$", re.I)

    def is_read(request: web.Request) -> bool:
        return request.method.upper() == "POST" and bool(route.match(request.path))

    async def handle(request: web.Request) -> web.StreamResponse:
        m = route.match(request.path)
        if not m:
            raise ServiceError(404, "NotFound", f"The requested path '{request.path}' was not found.")
        if request.method.upper() != "POST":
            raise ServiceError(405, "MethodNotAllowed", "metrics:getBatch only accepts POST.",
                               headers={"Allow": "POST"})
        q = request.query
        api_version = q.get("api-version", "")
        if not api_version:
            raise ServiceError(400, "MissingApiVersionParameter", MISSING_API_VERSION)
        if api_version not in API_VERSIONS:
            raise ServiceError(400, "InvalidApiVersionParameter",
                               f"The api-version '{api_version}' is invalid. The supported versions are "
                               f"'{','.join(API_VERSIONS)}'.")
        sub = m.group(1)
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise ServiceError(400, "BadRequest", "The request body is not valid JSON.") from None
        ids = body.get("resourceids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise ServiceError(400, "BadRequest",
                               "The request body must contain a non-empty 'resourceids' list.")
        if len(ids) > MAX_RESOURCES:
            raise ServiceError(400, "BadRequest",
                               f"At most {MAX_RESOURCES} resource ids are allowed per batch.")
        namespace = q.get("metricnamespace", "")
        if namespace.lower() != NAMESPACE.lower():
            raise ServiceError(400, "BadRequest",
                               f"Metric namespace '{namespace}' is not supported for resource type "
                               f"'{NAMESPACE}'. The lab serves '{NAMESPACE}' only.")
        names = [n.strip() for n in q.get("metricnames", "").split(",") if n.strip()]
        if not names:
            raise ServiceError(400, "BadRequest", "The 'metricnames' query parameter is required.")
        unknown = [n for n in names if n.lower() not in METRICS]
        if unknown:
            valid = ", ".join(d.name for d in METRICS.values())
            raise ServiceError(400, "BadRequest",
                               "Failed to find metric configuration for provider: Microsoft.Monitor, "
                               f"resource Type: accounts, metric: {unknown[0]}, Valid metrics: {valid}")
        aggs_raw = [a.strip().lower() for a in q.get("aggregation", "").split(",") if a.strip()]
        bad = [a for a in aggs_raw if a not in AGGREGATIONS]
        if bad:
            raise ServiceError(400, "BadRequest", f"Invalid aggregation '{bad[0]}'. Valid values: "
                               + ", ".join(AGGREGATIONS) + ".")
        for rid in ids:
            if parse_resource_id(rid).subscription.lower() != sub.lower():
                raise ServiceError(400, "BadRequest",
                                   f"Resource '{rid}' is not in subscription '{sub}' of the request URL.")
        require(state, "metrics:read", ids[0])
        now = state.now()
        end = _parse_time(q["endtime"], "endtime") if q.get("endtime") else now
        start = _parse_time(q["starttime"], "starttime") if q.get("starttime") else end - timedelta(hours=1)
        if start >= end:
            raise ServiceError(400, "BadRequest", "The starttime must be before the endtime.")
        step, interval = _parse_interval(q.get("interval"), end - start)
        values = []
        with state.lock:
            for rid in ids:
                ws = next((w for w in state.workspaces if w.id.lower() == rid.lower()), None)
                if ws is None:
                    raise ServiceError(404, "ResourceNotFound", f"The Resource '{rid}' was not found.")
                metrics = [_metric_result(ws, METRICS[n.lower()], aggs_raw or [METRICS[n.lower()].primary],
                                          start, end, step, now) for n in names]
                values.append({"starttime": _iso(start), "endtime": _iso(end), "interval": interval,
                               "namespace": NAMESPACE, "resourceregion": ws.location, "resourceid": ws.id,
                               "value": metrics})
        return web.json_response({"values": values})

    return make_service_app(state, issuer, flavor, handle, audiences=audiences, is_read=is_read)
