"""The sidecar's log from Log Analytics (ContainerLogV2) with the real azure-monitor-query LogsQueryClient.

The lab has no Log Analytics emulator, so a small HTTPS fake of the query API answers here
(``POST /v1/workspaces/{id}/query``, the documented shape); ARM (the cluster's monitoring
add-on names the workspace) is faked on the same server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from promrw_doctor.collectors.azure_arm import ClusterMatch
from promrw_doctor.collectors.azure_http import AzureHttp
from promrw_doctor.collectors.azure_logs import logs_endpoint, sidecar_query
from promrw_doctor.core import AccessDenied, FactStore, NotApplicable, Target
from promrw_doctor.core.facts import FactError
from promrw_doctor.domain.clouds import PUBLIC, USGOV
from promrw_doctor.lab.pki import CertificateAuthority
from promrw_doctor.lab.server import LabServer

WS = "11111111-2222-4333-8444-555555555555"
LA_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/la-aks"
TARGET = Target("monitoring/prom-0", "pod", attributes={"namespace": "monitoring", "pod": "prom-0"})
SIDECAR_LINES = [
    ["2026-11-21T11:57:00Z", 'time="2026-11-21T11:57:00Z" level=error msg="Failed to publish metrics" statusCode=403'],
    ["2026-11-21T11:58:00Z", {"msg": "Metric packets published in last 1 minute", "failedPublishing": 120}],
]


@dataclass
class Token:
    token: str
    expires_on: int


class Credential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kw: Any) -> Token:
        self.scopes.extend(scopes)
        return Token("opaque-la-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kw: Any) -> Token:
        return self.get_token(*scopes)


@dataclass
class Fake:
    url: str
    queries: list[dict[str, Any]]
    deny: list[bool]


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fake]:
    queries: list[dict[str, Any]] = []
    deny = [False]

    async def query(request: web.Request) -> web.Response:
        if deny[0]:
            return web.json_response({"error": {"code": "InsufficientAccessError", "message": "no access"}},
                                     status=403)
        body = await request.json()
        queries.append({"workspace": request.match_info["ws"], **body})
        return web.json_response({"tables": [{"name": "PrimaryResult", "columns": [
            {"name": "TimeGenerated", "type": "datetime"}, {"name": "LogMessage", "type": "dynamic"}],
            "rows": SIDECAR_LINES}]})

    async def arm(request: web.Request) -> web.Response:
        return web.json_response({"id": LA_ID, "properties": {"customerId": WS}})

    app = web.Application()
    app.router.add_post("/v1/workspaces/{ws}/query", query)
    app.router.add_get("/subscriptions/{tail:.*}", arm)
    ca = CertificateAuthority.create()
    bundle = ca.write_bundle(tmp_path_factory.mktemp("la") / "ca.pem")
    with LabServer() as srv:
        ep = srv.add("la", app, ssl_context=ca.issue_server().ssl_context())
        mp = pytest.MonkeyPatch()
        mp.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        try:
            yield Fake(ep.url, queries, deny)
        finally:
            mp.undo()


def store(fake: Fake, options: dict[str, Any], cluster: ClusterMatch | None = None) -> FactStore:
    profile = replace(PUBLIC, name="lab", arm_endpoint=fake.url, extra={"logs_endpoint": fake.url})
    cred = Credential()
    st = FactStore(options)
    pod = {"metadata": {"namespace": "monitoring", "name": "prom-0"}, "spec": {}}
    facts: dict[str, Any] = {"k8s.sidecar_container": {"name": "prom-remotewrite"}, "k8s.pod": pod,
                             "azure.cloud": profile, "azure.credential": cred, "k8s.log_window": 1800.0,
                             "azure.http": AzureHttp(profile, cred)}
    if cluster is not None:
        facts["azure.cluster"] = cluster
    for k, v in facts.items():
        st.preset(k, v)
    return st


def test_reads_the_sidecar_lines_for_the_window(fake: Fake) -> None:
    log = store(fake, {"log_analytics_workspace": WS}).get("azure.sidecar_logs_la", TARGET)
    assert log.container == "prom-remotewrite" and log.pod == "monitoring/prom-0"
    assert log.lines[0].text.startswith('time="2026-11-21T11:57:00Z" level=error')
    assert json.loads(log.lines[1].text)["failedPublishing"] == 120  # dynamic LogMessage kept as JSON
    assert log.lines[0].ts is not None and log.lines[0].ts < log.lines[1].ts  # type: ignore[operator]
    q = fake.queries[-1]
    assert q["workspace"] == WS and q["timespan"] in ("PT30M", "PT1800S", "PT1800.0S")
    assert 'PodName == "prom-0"' in q["query"] and 'ContainerName == "prom-remotewrite"' in q["query"]
    assert WS in (log.note or "") and log.workspace == WS


def test_workspace_from_the_clusters_monitoring_add_on(fake: Fake) -> None:
    cluster = ClusterMatch({"id": "c", "name": "aks-lab", "properties": {"addonProfiles": {"omsagent": {
        "enabled": True, "config": {"logAnalyticsWorkspaceResourceID": LA_ID}}}}}, "name")
    log = store(fake, {}, cluster).get("azure.sidecar_logs_la", TARGET)
    assert "cluster aks-lab monitoring add-on" in (log.note or "") and len(log.lines) == 2


def test_no_workspace_known_is_not_applicable(fake: Fake) -> None:
    cluster = ClusterMatch({"id": "c", "name": "aks-lab", "properties": {"addonProfiles": {}}}, "name")
    with pytest.raises(FactError) as err:
        store(fake, {}, cluster).get("azure.sidecar_logs_la", TARGET)
    assert isinstance(err.value.cause, NotApplicable) and "--log-analytics-workspace" in str(err.value.cause)


def test_denied_names_the_role(fake: Fake) -> None:
    fake.deny[0] = True
    try:
        with pytest.raises(FactError) as err:
            store(fake, {"log_analytics_workspace": WS}).get("azure.sidecar_logs_la", TARGET)
    finally:
        fake.deny[0] = False
    assert isinstance(err.value.cause, AccessDenied)
    assert err.value.cause.needs.startswith(f"Log Analytics Reader on workspace {WS}")


def test_query_quotes_names_and_endpoints_per_cloud(tmp_path: Path) -> None:
    q = sidecar_query('ns"x', "p", "c", 50)
    assert 'PodNamespace == "ns\\"x"' in q and "take 50" in q
    assert logs_endpoint(PUBLIC) == "https://api.loganalytics.io"
    assert logs_endpoint(USGOV) == "https://api.loganalytics.us"
    assert logs_endpoint(replace(PUBLIC, name="lab-usgov", extra={"base_cloud": "usgov"})) == \
        "https://api.loganalytics.us"
