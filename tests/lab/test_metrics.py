"""The metrics data-plane emulator driven by the real ``azure.monitor.querymetrics.MetricsClient``.

Only the credential is ours (a seam: it hands out tokens minted by the lab's issuer and
records the scopes it was asked for); request building, the POST ``metrics:getBatch``,
response parsing and error mapping are the SDK's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import requests
from aiohttp import web
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.monitor.querymetrics import Metric, MetricAggregationType, MetricsClient, MetricsQueryResult

from promrw_doctor.lab.azure_state import AzureState, Workspace
from promrw_doctor.lab.emulators import metrics
from promrw_doctor.lab.emulators.azure_common import request_log
from promrw_doctor.lab.server import LabServer
from promrw_doctor.lab.tokens import TokenIssuer

from .conftest import LabPki

TENANT = "72f988bf-0000-0000-0000-000000000001"
SUB = "00000000-0000-0000-0000-0000000000aa"
AUD = "https://metrics.monitor.azure.com"
DOCTOR_APP = "d0c70000-0000-0000-0000-000000000001"
DOCTOR_OID = "d0c70000-0000-0000-0000-0000000000ff"
WS_ID = f"/subscriptions/{SUB}/resourceGroups/rg-monitoring/providers/Microsoft.Monitor/accounts/amw-lab"
QUIET_ID = f"/subscriptions/{SUB}/resourceGroups/rg-monitoring/providers/Microsoft.Monitor/accounts/amw-quiet"
NS = "Microsoft.Monitor/accounts"
ATS_PCT = "ActiveTimeSeriesPercentUtilization"
EPM_PCT = "EventsPerMinuteIngestedPercentUtilization"

# 50 quiet minutes, then 10 minutes above the quota (throttled).
ATS_SERIES = [35.0] * 50 + [120.0] * 10


@dataclass
class LabCredential:
    """A TokenCredential whose tokens come from the lab issuer (mint is the seam, the SDK is real)."""

    issuer: TokenIssuer
    audience: str = AUD
    expired: bool = False
    scopes: list[tuple[str, ...]] = field(default_factory=list)

    def _mint(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        self.scopes.append(scopes)
        if self.expired:
            return self.issuer.mint(audience=self.audience, client_id=DOCTOR_APP, principal_id=DOCTOR_OID,
                                    not_before=int(time.time()) - 7200, lifetime_s=3600)
        return self.issuer.mint(audience=self.audience, client_id=DOCTOR_APP, principal_id=DOCTOR_OID)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token, exp = self._mint(scopes)
        return AccessToken(token, exp)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        token, exp = self._mint(scopes)
        return AccessTokenInfo(token, exp)

    def close(self) -> None:
        return None


@dataclass
class Lab:
    url: str
    ca: str
    state: AzureState
    issuer: TokenIssuer
    app: web.Application

    def client(self, credential: LabCredential | None = None) -> MetricsClient:
        return MetricsClient(self.url, credential or LabCredential(self.issuer), audience=AUD,
                             connection_verify=self.ca, retry_total=0)


@pytest.fixture(scope="module")
def lab(lab_pki: LabPki) -> Iterator[Lab]:
    state = AzureState(
        tenant_id=TENANT, subscription_id=SUB,
        workspaces=[
            Workspace(WS_ID, "amw-lab", "eastus", "", "", "https://amw-lab.eastus.prometheus.monitor.azure.com",
                      metrics={ATS_PCT: ATS_SERIES, EPM_PCT: [20.0]}),
            Workspace(QUIET_ID, "amw-quiet", "eastus", "", "", "https://q.eastus.prometheus.monitor.azure.com"),
        ])
    issuer = TokenIssuer(TENANT)
    app = metrics.make_app(state, issuer, audience=AUD)
    with LabServer() as server:
        ep = server.add("metrics", app, ssl_context=lab_pki.server_ssl)
        yield Lab(ep.url, str(lab_pki.ca_bundle), state, issuer, app)


@pytest.fixture(autouse=True)
def _reset_denials(lab: Lab) -> Iterator[None]:
    yield
    lab.state.doctor_denied.clear()


def _metric(result: MetricsQueryResult, name: str) -> Metric:
    return next(m for m in result.metrics if m.name == name)


def _values(result: MetricsQueryResult, name: str, agg: str) -> list[float | None]:
    return [getattr(p, agg) for p in _metric(result, name).timeseries[0].data]


def test_percent_utilization_over_the_last_hour(lab: Lab) -> None:
    cred = LabCredential(lab.issuer)
    results = lab.client(cred).query_resources(
        resource_ids=[WS_ID], metric_namespace=NS, metric_names=[ATS_PCT, EPM_PCT],
        timespan=timedelta(hours=1), granularity=timedelta(minutes=1),
        aggregations=[MetricAggregationType.AVERAGE, MetricAggregationType.MAXIMUM])
    assert cred.scopes and cred.scopes[0] == (f"{AUD}/.default",)
    [result] = results
    assert result.granularity == timedelta(minutes=1) and result.resource_region == "eastus"
    assert result.namespace == NS
    ats = _metric(result, ATS_PCT)
    assert ats.unit == "Percent" and ats.id == f"{WS_ID}/providers/Microsoft.Insights/metrics/{ATS_PCT}"
    avg = [v for v in _values(result, ATS_PCT, "average") if v is not None]
    assert 59 <= len(avg) <= 61
    assert avg[-10:] == [120.0] * 10 and set(avg[:-10]) == {35.0}
    assert max(v for v in _values(result, ATS_PCT, "maximum") if v is not None) == 120.0
    epm = [v for v in _values(result, EPM_PCT, "average") if v is not None]
    assert set(epm) == {20.0} and len(epm) >= 59


def test_counts_and_limits_are_derived(lab: Lab) -> None:
    [result] = lab.client().query_resources(
        resource_ids=[WS_ID], metric_namespace=NS,
        metric_names=["ActiveTimeSeries", "ActiveTimeSeriesLimit", "EventsPerMinuteIngested",
                      "EventsPerMinuteIngestedLimit"],
        timespan=timedelta(minutes=30))
    # No aggregation requested: each metric's primary aggregation (Maximum for counts).
    ats = [v for v in _values(result, "ActiveTimeSeries", "maximum") if v is not None]
    assert ats[-1] == 1_200_000 and ats[0] == 350_000
    assert set(v for v in _values(result, "ActiveTimeSeriesLimit", "maximum") if v is not None) == {1_000_000}
    assert set(v for v in _values(result, "EventsPerMinuteIngested", "maximum") if v is not None) == {200_000}
    assert _metric(result, "ActiveTimeSeries").unit == "Count"


def test_coarser_interval_aggregates(lab: Lab) -> None:
    [result] = lab.client().query_resources(
        resource_ids=[WS_ID], metric_namespace=NS, metric_names=[ATS_PCT],
        timespan=timedelta(hours=1), granularity=timedelta(minutes=30),
        aggregations=["Maximum", "Minimum", "Count"])
    data = _metric(result, ATS_PCT).timeseries[0].data
    assert 2 <= len(data) <= 3
    assert max(p.maximum for p in data if p.maximum is not None) == 120.0
    assert min(p.minimum for p in data if p.minimum is not None) == 35.0
    assert sum(p.count or 0 for p in data) >= 59


def test_workspace_without_data_returns_empty_points(lab: Lab) -> None:
    [result] = lab.client().query_resources(
        resource_ids=[QUIET_ID], metric_namespace=NS, metric_names=[ATS_PCT], timespan=timedelta(minutes=10),
        aggregations=["Average"])
    data = _metric(result, ATS_PCT).timeseries[0].data
    assert data and all(p.average is None for p in data) and all(p.timestamp is not None for p in data)


def test_metrics_read_denied(lab: Lab) -> None:
    lab.state.doctor_denied.add("metrics:read")
    with pytest.raises(HttpResponseError) as info:
        lab.client().query_resources(resource_ids=[WS_ID], metric_namespace=NS, metric_names=[ATS_PCT],
                                     timespan=timedelta(hours=1))
    assert info.value.status_code == 403
    assert info.value.error is not None and info.value.error.code == "AuthorizationFailed"
    assert "'Microsoft.Insights/metrics/read'" in str(info.value.message)
    assert DOCTOR_OID in str(info.value.message)


def test_expired_token_is_an_authentication_error(lab: Lab) -> None:
    with pytest.raises(ClientAuthenticationError) as info:
        lab.client(LabCredential(lab.issuer, expired=True)).query_resources(
            resource_ids=[WS_ID], metric_namespace=NS, metric_names=[ATS_PCT], timespan=timedelta(hours=1))
    assert info.value.status_code == 401
    assert info.value.error is not None and info.value.error.code == "ExpiredAuthenticationToken"


def test_wrong_audience_is_rejected(lab: Lab) -> None:
    with pytest.raises(ClientAuthenticationError) as info:
        lab.client(LabCredential(lab.issuer, audience="https://management.azure.com")).query_resources(
            resource_ids=[WS_ID], metric_namespace=NS, metric_names=[ATS_PCT], timespan=timedelta(hours=1))
    assert info.value.error is not None and info.value.error.code == "InvalidAuthenticationTokenAudience"


def test_unknown_metric_and_unknown_resource(lab: Lab) -> None:
    with pytest.raises(HttpResponseError) as bad:
        lab.client().query_resources(resource_ids=[WS_ID], metric_namespace=NS, metric_names=["Nope"],
                                     timespan=timedelta(hours=1))
    assert bad.value.status_code == 400 and "Valid metrics: ActiveTimeSeries" in str(bad.value.message)
    gone = WS_ID.replace("amw-lab", "amw-gone")
    with pytest.raises(ResourceNotFoundError):
        lab.client().query_resources(resource_ids=[gone], metric_namespace=NS, metric_names=[ATS_PCT],
                                     timespan=timedelta(hours=1))


def test_raw_request_validation_and_log(lab: Lab) -> None:
    token, _ = lab.issuer.mint(audience=AUD, client_id=DOCTOR_APP, principal_id=DOCTOR_OID)
    url = f"{lab.url}/subscriptions/{SUB}/metrics:getBatch"
    headers = {"Authorization": f"Bearer {token}"}
    log = request_log(lab.app)
    before = len(log)
    query = {"api-version": "2024-02-01", "metricnamespace": NS, "metricnames": ATS_PCT}
    body = {"resourceids": [WS_ID]}

    def post(params: dict[str, str], payload: object, auth: bool = True) -> requests.Response:
        return requests.post(url, params=params, json=payload, headers=headers if auth else {},
                             verify=lab.ca, timeout=10)

    r = post({k: v for k, v in query.items() if k != "api-version"}, body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "MissingApiVersionParameter"
    ok = post(query, body)
    assert ok.status_code == 200 and ok.json()["values"][0]["resourceid"] == WS_ID
    put = requests.put(url, headers=headers, verify=lab.ca, timeout=10)
    assert put.status_code == 405
    empty = post(query, {})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "BadRequest"
    missing = post(query, body, auth=False)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "AuthenticationFailed"
    methods = [m for m, _ in log[before:]]
    assert methods == ["POST", "POST", "PUT", "POST", "POST"]
    assert all(p.startswith(f"/subscriptions/{SUB}/metrics:getBatch") for _, p in log[before:])


def test_sdk_session_only_posts_get_batch(lab: Lab) -> None:
    log = request_log(lab.app)
    before = len(log)
    lab.client().query_resources(resource_ids=[WS_ID], metric_namespace=NS, metric_names=[ATS_PCT],
                                 timespan=timedelta(hours=1))
    [(method, path)] = log[before:]
    assert method == "POST" and path.startswith(f"/subscriptions/{SUB}/metrics:getBatch?")
    assert "metricnames=ActiveTimeSeriesPercentUtilization" in path
