"""Unit tests of the Azure-side checks and the identity token/certificate checks, on preset facts.

Every check: a pass and each of its failure codes; ``unknown`` (naming the permission) when a
fact it needs could not be read; ``skipped`` where it does not apply; and root-cause ranking
where one finding explains another.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from promrw_doctor.checks.azure.cloud import audience, query_access, workspace_quota
from promrw_doctor.checks.azure.ingestion import dce_match, dcr_found, ingestion_url
from promrw_doctor.checks.azure.roles import identity_found, pod_identity_roles, role_assignment
from promrw_doctor.checks.identity.cert_validity import certificate_registered, certificate_validity
from promrw_doctor.checks.identity.token_acquisition import sidecar_token, sidecar_token_claims

from promrw_doctor.collectors.azure import LiveIngestionUrl, SubscriptionScope
from promrw_doctor.collectors.azure_arm import (
    Assignments,
    ClusterMatch,
    DcrLookup,
    Principal,
    PrincipalLookup,
    RoleAssignment,
)
from promrw_doctor.collectors.azure_graph import AppRegistration, KeyCredentialInfo
from promrw_doctor.collectors.azure_keyvault import KeyVaultCertificate
from promrw_doctor.collectors.azure_metrics import MetricSummary, QueryAccess, WorkspaceMetrics
from promrw_doctor.collectors.azure_token import SidecarToken
from promrw_doctor.core import AccessDenied, FactStore, NotApplicable, Severity, Status, Target
from promrw_doctor.core.engine import Engine, EngineOptions
from promrw_doctor.core.facts import _Slot, fact_spec
from promrw_doctor.core.model import CheckResult
from promrw_doctor.core.registry import CheckSpec, Registry, spec_of
from promrw_doctor.domain.certs import CertInfo
from promrw_doctor.domain.clouds import PUBLIC, USGOV, profile_from_dict
from promrw_doctor.domain.ingestion_url import ingestion_url_problems, parse_ingestion_url
from promrw_doctor.domain.sidecar import settings_from_env
from promrw_doctor.identity.claims import TokenClaims

from .kube_fixtures import NOW, TARGET, defaults

SUB = "4f8e2c1a-9b7d-4e3f-8a6c-2d1b0e9f8a7c"
TENANT = "7d3c2a1b-5e4f-4a6b-9c8d-0e1f2a3b4c5d"
CLIENT = "9a1b2c3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d"
PRINCIPAL = "0b1c2d3e-4f5a-4b6c-9d8e-2f3a4b5c6d7e"
KUBELET_CLIENT = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
KUBELET_OID = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"
DCR_IMMUTABLE = "dcr-8d2e4f6a1b3c5d7e9f0a2b4c6d8e0f1a"
MA = f"/subscriptions/{SUB}/resourceGroups/MA_amw-lab_eastus_managed"
DCR_ID = f"{MA}/providers/Microsoft.Insights/dataCollectionRules/amw-lab"
DCE_ID = f"{MA}/providers/Microsoft.Insights/dataCollectionEndpoints/amw-lab"
WS_ID = f"/subscriptions/{SUB}/resourceGroups/rg-monitoring/providers/Microsoft.Monitor/accounts/amw-lab"
NODE_RG = f"/subscriptions/{SUB}/resourceGroups/MC_rg-aks_aks-lab_eastus"
MI_ID = (f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ManagedIdentity/"
         "userAssignedIdentities/prom-rw-mi")
HOST = "amw-lab-a1b2.eastus-1.metrics.ingest.monitor.azure.com"
URL = (f"https://{HOST}/dataCollectionRules/{DCR_IMMUTABLE}/streams/Microsoft-PrometheusMetrics/api/v1/write"
       "?api-version=2023-04-24")
MMP = "3913510d-42f4-4e42-8a64-420c390055eb"
MIO = "f1a07417-d97a-45cb-824c-7a7467783830"
VMC = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
NOW_DT = datetime.fromtimestamp(NOW, UTC)
ROLES_NEEDS = f"Reader (Microsoft.Authorization/roleAssignments/read) on /subscriptions/{SUB}"


# --------------------------------------------------------------------------- fact builders

def live_url(raw: str = URL, profile: Any = PUBLIC) -> LiveIngestionUrl:
    extra = () if profile in (PUBLIC, USGOV) else (profile,)
    try:
        parsed = parse_ingestion_url(raw, extra)
        error = None
    except ValueError as exc:
        parsed, error = None, str(exc)
    return LiveIngestionUrl(raw, parsed, tuple(ingestion_url_problems(raw, extra)), error)


def dcr_obj(*, streams: tuple[str, ...] = ("Microsoft-PrometheusMetrics",), dce: str | None = DCE_ID) -> dict[str, Any]:
    props: dict[str, Any] = {
        "immutableId": DCR_IMMUTABLE,
        "dataSources": {"prometheusForwarder": [{"streams": list(streams), "name": "p"}]},
        "destinations": {"monitoringAccounts": [{"accountResourceId": WS_ID, "name": "MonitoringAccount1"}]},
        "dataFlows": [{"streams": list(streams), "destinations": ["MonitoringAccount1"]}],
    }
    if dce:
        props["dataCollectionEndpointId"] = dce
    return {"id": DCR_ID, "name": "amw-lab", "properties": props}


def dcr_lookup(found: bool = True, **kw: Any) -> DcrLookup:
    return DcrLookup(DCR_IMMUTABLE, dcr_obj(**kw) if found else None, (SUB,), scope_source="--subscription")


def dce_obj(host: str = HOST) -> dict[str, Any]:
    return {"id": DCE_ID, "name": "amw-lab", "properties": {"metricsIngestion": {"endpoint": f"https://{host}"}}}


def principal(kind: str = "ManagedIdentity") -> PrincipalLookup:
    return PrincipalLookup(CLIENT, Principal(CLIENT, PRINCIPAL, kind, "prom-rw-mi", MI_ID, "ARM"), ("ARM",))


def ra(scope: str, role: str = MMP, *, minutes_ago: float = 60 * 24, pid: str = PRINCIPAL) -> RoleAssignment:
    return RoleAssignment(f"{scope}/providers/Microsoft.Authorization/roleAssignments/x-{role}-{minutes_ago}",
                          scope, role, pid, NOW_DT - timedelta(minutes=minutes_ago))


def assignments(*items: RoleAssignment, pid: str = PRINCIPAL) -> Assignments:
    return Assignments(pid, tuple(items), (f"/subscriptions/{SUB}",))


def cluster() -> ClusterMatch:
    return ClusterMatch({"id": f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/"
                               "managedClusters/aks-lab", "name": "aks-lab",
                         "properties": {"nodeResourceGroup": "MC_rg-aks_aks-lab_eastus",
                                        "identityProfile": {"kubeletidentity": {
                                            "clientId": KUBELET_CLIENT, "objectId": KUBELET_OID}}}},
                        "node resource group")


def cert_info(days_left: float, thumb: str = "AA" * 20, *, start_days: float = -30) -> CertInfo:
    return CertInfo("CN=prom-rw", "CN=prom-rw", thumb, NOW_DT + timedelta(days=start_days),
                    NOW_DT + timedelta(days=days_left), "1", True, "pem")


def kv_cert(days_left: float, thumb: str = "AA" * 20, *, auto_renew: bool = True, enabled: bool = True,
            start_days: float = -30) -> KeyVaultCertificate:
    return KeyVaultCertificate("kv-prom", "prom-rw-cert", "v1", thumb, NOW_DT + timedelta(days=start_days),
                               NOW_DT + timedelta(days=days_left), enabled, auto_renew, "https://kv/certificates/x")


def app(*thumbs_and_days: tuple[str, float]) -> AppRegistration:
    return AppRegistration(CLIENT, "obj", "prom-rw-app", tuple(
        KeyCredentialInfo(f"k{i}", t, NOW_DT - timedelta(days=300), NOW_DT + timedelta(days=d))
        for i, (t, d) in enumerate(thumbs_and_days)))


def metrics(events: float | None, series: float | None = 10.0) -> WorkspaceMetrics:
    return WorkspaceMetrics(WS_ID, "eastus", "https://eastus.metrics.monitor.azure.com", {
        "EventsPerMinuteIngestedPercentUtilization": MetricSummary(
            "EventsPerMinuteIngestedPercentUtilization", events, events, "2026-11-21T11:50:00Z" if events else None),
        "ActiveTimeSeriesPercentUtilization": MetricSummary("ActiveTimeSeriesPercentUtilization", series, series)})


# --------------------------------------------------------------------------- runner

class Denied:
    """A preset fact that raises (AccessDenied, NotApplicable, ...) when read."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def azure_defaults() -> dict[str, Any]:
    return {
        "azure.cloud": PUBLIC,
        "azure.ingestion_url": live_url(),
        "azure.subscriptions": SubscriptionScope((SUB,), "--subscription"),
        "azure.dcr": dcr_lookup(),
        "azure.dce": dce_obj(),
        "azure.principal": principal(),
        "azure.role_assignments": assignments(ra(DCR_ID)),
        "azure.cluster": cluster(),
        "azure.kubelet_role_assignments": assignments(ra(f"/subscriptions/{SUB}/resourceGroups/rg-aks", MIO,
                                                         pid=KUBELET_OID),
                                                      ra(NODE_RG, VMC, pid=KUBELET_OID), pid=KUBELET_OID),
        "azure.workspace_metrics": metrics(20),
        "azure.workspace": {"id": WS_ID},
        "azure.query_access": Denied(NotApplicable("only needed for --probe")),
        "azure.sidecar_token": Denied(NotApplicable("not attempted")),
        "azure.certificate_file": Denied(NotApplicable("no --client-certificate given")),
        "azure.keyvault_certificate": Denied(NotApplicable("not from Key Vault")),
        "azure.keyvault_source": Denied(NotApplicable("not from Key Vault")),
        "azure.application": Denied(NotApplicable("no application")),
    }


def store(facts: dict[str, Any], options: dict[str, Any] | None = None, target: Target = TARGET) -> FactStore:
    st = FactStore({"since": "30m", **(options or {})}, now=NOW)
    for name, value in {**defaults(), **azure_defaults(), **facts}.items():
        spec = fact_spec(name)
        key_target = None if spec is not None and spec.scope == "run" else target
        if isinstance(value, Denied):
            slot = _Slot()
            slot.error = value.exc
            slot.event.set()
            st._slots[(name, key_target.id if key_target else "")] = slot
        else:
            st.preset(name, value, key_target)
    return st


def spec(func: Any) -> CheckSpec:
    found = spec_of(func)
    assert found is not None
    return found


def run(func: Any, facts: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> CheckResult:
    one = replace(spec(func), depends_on=())
    engine = Engine(Registry([one]), EngineOptions(check_timeout_s=10))
    return engine.run_target([one], store(facts or {}, options), TARGET)[0]


def codes(result: CheckResult) -> list[str]:
    return [f.code for f in result.findings if f.status.is_problem]


# --------------------------------------------------------------------------- ingestion URL / DCR / DCE

def test_ingestion_url_pass() -> None:
    r = run(ingestion_url)
    assert r.status == Status.PASS and DCR_IMMUTABLE in r.summary


@pytest.mark.parametrize("raw", [
    "<INGESTION-URL>",
    f"https://{HOST}/dataCollectionRules/amw-lab/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24",
    f"https://{HOST}/dataCollectionRules/{DCR_IMMUTABLE}/streams/Microsoft-PrometheusMetrics/api/v1/write",
    "https://amw-lab.eastus.prometheus.monitor.azure.com/api/v1/write",
])
def test_ingestion_url_invalid(raw: str) -> None:
    r = run(ingestion_url, {"azure.ingestion_url": live_url(raw)})
    assert r.status == Status.FAIL and codes(r) == ["INGESTION_URL_INVALID"]
    assert any("Helm values" in line for line in r.findings[0].remediation)


def test_ingestion_url_unknown_api_version_only_warns() -> None:
    r = run(ingestion_url, {"azure.ingestion_url": live_url(URL.replace("2023-04-24", "2031-01-01"))})
    assert r.status == Status.WARN and r.findings[0].severity == Severity.LOW


def test_ingestion_url_custom_cloud_host_counts() -> None:
    lab = profile_from_dict({"authority_host": "https://127.0.0.1:1", "arm_endpoint": "https://127.0.0.1:2",
                             "arm_audience": "a", "graph_endpoint": "https://127.0.0.1:3", "keyvault_suffix": ".v",
                             "ingestion_audience": "https://monitor.azure.us", "query_audience": "q",
                             "ingestion_host_suffixes": ["127.0.0.1"]})
    raw = f"https://127.0.0.1:4443/dataCollectionRules/{DCR_IMMUTABLE}/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"
    assert run(ingestion_url, {"azure.ingestion_url": live_url(raw, lab), "azure.cloud": lab}).status == Status.PASS


def test_dcr_found_and_not_found() -> None:
    assert run(dcr_found).status == Status.PASS
    r = run(dcr_found, {"azure.dcr": dcr_lookup(found=False)})
    assert codes(r) == ["DCR_NOT_FOUND"]
    assert f"/subscriptions/{SUB}" in r.summary and "ARM list" in r.summary  # says where it looked
    assert r.findings[0].remediation[0].startswith(f"az monitor data-collection rule list --subscription {SUB}")
    assert r.findings[0].evidence["searched"].endswith(f"/subscriptions/{SUB}")


def test_dcr_denied_is_unknown_naming_the_permission() -> None:
    needs = f"Reader (Microsoft.Insights/dataCollectionRules/read) on /subscriptions/{SUB}"
    r = run(dcr_found, {"azure.dcr": Denied(AccessDenied(needs))})
    assert r.status == Status.UNKNOWN and r.needs == needs


def test_dce_match() -> None:
    assert run(dce_match).status == Status.PASS
    r = run(dce_match, {"azure.dce": dce_obj("other-x1y2.eastus-1.metrics.ingest.monitor.azure.com")})
    assert codes(r) == ["DCE_MISMATCH"] and "other-x1y2" in r.summary
    assert codes(run(dce_match, {"azure.dcr": dcr_lookup(streams=("Custom-Logs_CL",))})) == ["DCE_MISMATCH"]
    assert codes(run(dce_match, {"azure.dce": None, "azure.dcr": dcr_lookup(dce=None)})) == ["DCE_MISMATCH"]


def test_dce_match_compares_the_port_too() -> None:
    raw = URL.replace(HOST, HOST + ":8443")
    r = run(dce_match, {"azure.ingestion_url": live_url(raw)})
    assert r.status == Status.FAIL


# --------------------------------------------------------------------------- identity and roles

def test_identity_found() -> None:
    assert run(identity_found).status == Status.PASS
    r = run(identity_found, {"azure.principal": PrincipalLookup(CLIENT, None, ("Microsoft Graph",))})
    assert codes(r) == ["IDENTITY_NOT_FOUND"]
    assert r.findings[0].explained_by  # a cluster-side client-id finding explains it


def test_identity_not_found_names_the_identity_whose_principal_id_it_is() -> None:
    other = Principal("real-client-id", CLIENT, "ManagedIdentity", "prom-rw-mi")
    r = run(identity_found, {"azure.principal": PrincipalLookup(CLIENT, None, ("ARM",), other)})
    assert "principal (object) id of ManagedIdentity prom-rw-mi" in r.summary and "real-client-id" in r.summary


def test_role_assignment_on_the_dcr_or_a_parent_passes() -> None:
    assert run(role_assignment).status == Status.PASS
    parent = assignments(ra(MA))
    assert run(role_assignment, {"azure.role_assignments": parent}).status == Status.PASS
    assert run(role_assignment, {"azure.role_assignments": assignments(ra(f"/subscriptions/{SUB}"))}).status \
        == Status.PASS


def test_role_assignment_missing() -> None:
    r = run(role_assignment, {"azure.role_assignments": assignments()})
    assert codes(r) == ["ROLE_ASSIGNMENT_MISSING"]
    fix = r.findings[0].remediation[0]
    assert fix == (f"az role assignment create --assignee {CLIENT} --role \"Monitoring Metrics Publisher\" "
                   f"--scope {DCR_ID}")


def test_role_assignment_on_the_node_resource_group_names_it() -> None:
    r = run(role_assignment, {"azure.role_assignments": assignments(ra(NODE_RG), ra(DCR_ID, MIO))})
    assert codes(r) == ["ROLE_ASSIGNMENT_MISSING"]
    assert "AKS node resource group MC_rg-aks_aks-lab_eastus" in r.summary
    assert r.findings[0].evidence["assigned_elsewhere"] == [NODE_RG]


def test_role_assignment_on_the_workspace_is_not_the_dcr() -> None:
    r = run(role_assignment, {"azure.role_assignments": assignments(ra(WS_ID))})
    assert codes(r) == ["ROLE_ASSIGNMENT_MISSING"]
    assert "Azure Monitor workspace amw-lab (not its DCR)" in r.summary


def test_role_assignment_propagating_says_when() -> None:
    r = run(role_assignment, {"azure.role_assignments": assignments(ra(DCR_ID, minutes_ago=5))})
    assert r.status == Status.WARN and codes(r) == ["ROLE_ASSIGNMENT_PROPAGATING"]
    ready = (NOW_DT - timedelta(minutes=5) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ready in r.summary and r.findings[0].evidence["effective_from"] == ready


def test_old_and_young_assignment_together_pass() -> None:
    both = assignments(ra(DCR_ID, minutes_ago=5), ra(MA, minutes_ago=600))
    assert run(role_assignment, {"azure.role_assignments": both}).status == Status.PASS


def test_role_assignments_unreadable_is_unknown() -> None:
    r = run(role_assignment, {"azure.role_assignments": Denied(AccessDenied(ROLES_NEEDS))})
    assert r.status == Status.UNKNOWN and "Microsoft.Authorization/roleAssignments/read" in (r.needs or "")


def test_pod_identity_roles() -> None:
    facts = {"target.variant": "podIdentity"}
    assert run(pod_identity_roles, facts).status == Status.PASS
    # MIO only on the node RG while the identity lives in rg-aks: MIC cannot assign it.
    wrong = assignments(ra(NODE_RG, MIO, pid=KUBELET_OID), ra(NODE_RG, VMC, pid=KUBELET_OID), pid=KUBELET_OID)
    r = run(pod_identity_roles, {**facts, "azure.kubelet_role_assignments": wrong})
    assert codes(r) == ["POD_IDENTITY_ROLES_MISSING"] and "Managed Identity Operator" in r.summary
    assert r.findings[0].remediation == [
        f"az role assignment create --assignee {KUBELET_CLIENT} --role \"Managed Identity Operator\" "
        f"--scope /subscriptions/{SUB}/resourceGroups/rg-aks"]
    none = assignments(pid=KUBELET_OID)
    r = run(pod_identity_roles, {**facts, "azure.kubelet_role_assignments": none})
    assert "Virtual Machine Contributor" in r.summary and len(r.findings[0].remediation) == 2


def test_pod_identity_roles_only_for_pod_identity() -> None:
    assert run(pod_identity_roles, {"target.variant": "workloadIdentity"}).status == Status.SKIPPED


# --------------------------------------------------------------------------- audience

def gov_url() -> LiveIngestionUrl:
    return live_url(URL.replace("monitor.azure.com", "monitor.azure.us"))


def test_audience_public_default_passes() -> None:
    assert run(audience).status == Status.PASS


def test_audience_missing_for_usgov_host() -> None:
    r = run(audience, {"azure.ingestion_url": gov_url()})
    assert codes(r) == ["AUDIENCE_MISMATCH"]
    assert any("https://monitor.azure.us/.default" in line for line in r.findings[0].remediation)
    assert any("AZUREUSGOVERNMENT" in line for line in r.findings[0].remediation)


def test_audience_set_for_usgov_passes_and_wrong_cloud_fails() -> None:
    env = {"INGESTION_URL": gov_url().raw, "IDENTITY_TYPE": "userAssigned", "AZURE_CLIENT_ID": CLIENT,
           "INGESTION_AAD_AUDIENCE": "https://monitor.azure.us/.default", "CLOUD": "AZUREUSGOVERNMENT"}
    assert run(audience, {"azure.ingestion_url": gov_url(),
                          "sidecar.settings": settings_from_env(env)}).status == Status.PASS
    env["INGESTION_AAD_AUDIENCE"] = "https://monitor.azure.com/.default"
    r = run(audience, {"azure.ingestion_url": gov_url(), "sidecar.settings": settings_from_env(env)})
    assert r.status == Status.FAIL


def test_audience_unknown_host_cloud_is_unknown() -> None:
    r = run(audience, {"azure.ingestion_url": live_url("https://example.org/x")})
    assert r.status == Status.UNKNOWN


# --------------------------------------------------------------------------- quota and query access

@pytest.mark.parametrize(("events", "status", "code"), [
    (20, Status.PASS, None), (79.9, Status.PASS, None), (80, Status.WARN, "QUOTA_NEAR_LIMIT"),
    (99, Status.WARN, "QUOTA_NEAR_LIMIT"), (100, Status.FAIL, "INGESTION_THROTTLED"),
    (105, Status.FAIL, "INGESTION_THROTTLED"),
])
def test_workspace_quota(events: float, status: Status, code: str | None) -> None:
    r = run(workspace_quota, {"azure.workspace_metrics": metrics(events)})
    assert r.status == status
    assert codes(r) == ([code] if code else [])


def test_workspace_quota_no_data_and_denied() -> None:
    assert run(workspace_quota, {"azure.workspace_metrics": metrics(None, None)}).status == Status.PASS
    needs = f"Monitoring Reader (Microsoft.Insights/metrics/read) on {WS_ID}"
    r = run(workspace_quota, {"azure.workspace_metrics": Denied(AccessDenied(needs))})
    assert r.status == Status.UNKNOWN and r.needs == needs


def test_query_access() -> None:
    assert run(query_access).status == Status.SKIPPED  # without --probe
    ok = QueryAccess("https://amw.eastus.prometheus.monitor.azure.com", 200, True, principal="doc")
    assert run(query_access, {"azure.query_access": ok}).status == Status.PASS
    denied = QueryAccess("https://amw", 403, False, "AuthorizationFailed", "no", "doctor-oid")
    r = run(query_access, {"azure.query_access": denied})
    assert r.status == Status.WARN and codes(r) == ["QUERY_ACCESS_MISSING"]
    assert r.findings[0].remediation == [
        f"az role assignment create --assignee doctor-oid --role \"Monitoring Data Reader\" --scope {WS_ID}"]
    assert run(query_access, {"azure.query_access": QueryAccess("x", 401, False)}).status == Status.UNKNOWN


# --------------------------------------------------------------------------- token as the sidecar

def good_token() -> SidecarToken:
    claims = TokenClaims(aud="https://monitor.azure.com", tid=TENANT, oid=PRINCIPAL, appid=CLIENT)
    return SidecarToken("client certificate", "aadApplication (client id x)", "https://monitor.azure.com", True,
                        claims)


def test_sidecar_token_skipped_without_a_way_to_be_honest() -> None:
    r = run(sidecar_token)
    assert r.status == Status.SKIPPED and "not attempted" in r.summary


def test_sidecar_token_pass_and_claims() -> None:
    aad_env = {"INGESTION_URL": URL, "IDENTITY_TYPE": "aadApplication", "AZURE_CLIENT_ID": CLIENT,
               "AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_CERTIFICATE_PATH": "/mnt/c"}
    facts = {"azure.sidecar_token": good_token(), "sidecar.settings": settings_from_env(aad_env)}
    r = run(sidecar_token, facts)
    assert r.status == Status.PASS and r.findings[0].evidence["claims"]["aud"] == "https://monitor.azure.com"
    assert run(sidecar_token_claims, facts).status == Status.PASS
    wrong = replace(good_token(), claims=TokenClaims(aud="https://monitor.azure.com", tid="other-tenant",
                                                     appid=CLIENT))
    r = run(sidecar_token_claims, {**facts, "azure.sidecar_token": wrong})
    assert codes(r) == ["TOKEN_CLAIMS_UNEXPECTED"] and "other-tenant" in r.summary
    r = run(sidecar_token_claims, {**facts, "azure.ingestion_url": gov_url()})
    assert codes(r) == ["TOKEN_CLAIMS_UNEXPECTED"] and "https://monitor.azure.us" in r.summary


def test_sidecar_token_failure_names_the_aadsts_code() -> None:
    failed = SidecarToken("client certificate", "aadApplication (client id x)", "https://monitor.azure.com", False,
                          error="AADSTS700027: Client assertion ... [Reason - The key was not found.]",
                          category="authentication", aadsts_code=700027,
                          aadsts_meaning="the client assertion's certificate is not accepted",
                          aadsts_fix="upload it", certificate_reason="not-registered")
    r = run(sidecar_token, {"azure.sidecar_token": failed})
    assert codes(r) == ["TOKEN_ACQUISITION_FAILED"]
    assert "AADSTS700027" in r.summary and r.findings[0].evidence["certificate"] == "not-registered"
    assert "CERT_NOT_REGISTERED" in r.findings[0].explained_by


# --------------------------------------------------------------------------- certificates

AAD = {"target.variant": "aadApplication"}


def test_certificate_validity_from_the_file() -> None:
    r = run(certificate_validity, {**AAD, "azure.certificate_file": cert_info(200)})
    assert r.status == Status.PASS
    r = run(certificate_validity, {**AAD, "azure.certificate_file": cert_info(-35)})
    assert codes(r) == ["CERT_EXPIRED"] and "expired 35 day(s) ago" in r.summary
    r = run(certificate_validity, {**AAD, "azure.certificate_file": cert_info(400, start_days=3)})
    assert codes(r) == ["CERT_NOT_YET_VALID"]


def test_certificate_expiring_soon_severity_follows_thresholds() -> None:
    r = run(certificate_validity, {**AAD, "azure.keyvault_certificate": kv_cert(5, auto_renew=False)})
    assert r.status == Status.WARN and codes(r) == ["CERT_EXPIRING_SOON"]
    assert r.findings[0].severity == Severity.HIGH and "nothing renews it" in r.summary
    r = run(certificate_validity, {**AAD, "azure.keyvault_certificate": kv_cert(20)})
    assert r.findings[0].severity == Severity.MEDIUM and "Key Vault renews it" in r.summary
    r = run(certificate_validity, {**AAD, "azure.keyvault_certificate": kv_cert(20)},
            options={"cert_warn_days": 10, "cert_critical_days": 3})
    assert r.status == Status.PASS
    r = run(certificate_validity, {**AAD, "azure.keyvault_certificate": kv_cert(20)},
            options={"cert_warn_days": 60, "cert_critical_days": 25})
    assert r.findings[0].severity == Severity.HIGH


def test_certificate_expiry_takes_the_earliest_end_across_sources() -> None:
    # Registered on the app with an end date before the certificate's own (re-uploaded with a shorter window).
    facts = {**AAD, "azure.keyvault_certificate": kv_cert(200), "azure.application": app(("AA" * 20, -1))}
    assert codes(run(certificate_validity, facts)) == ["CERT_EXPIRED"]


def test_certificate_validity_judges_the_app_when_nothing_else_is_readable() -> None:
    kv_needs = "Key Vault certificates/get on vault kv-prom"
    facts = {**AAD, "azure.keyvault_certificate": Denied(AccessDenied(kv_needs)),
             "azure.application": app(("AA" * 20, -5), ("BB" * 20, 300))}
    r = run(certificate_validity, facts)
    assert r.status == Status.PASS and "judged from the application registration" in r.summary
    facts["azure.application"] = app(("AA" * 20, -5))
    assert codes(run(certificate_validity, facts)) == ["CERT_EXPIRED"]
    facts["azure.application"] = Denied(AccessDenied("Microsoft Graph Application.Read.All"))
    r = run(certificate_validity, facts)
    assert r.status == Status.UNKNOWN and kv_needs in (r.needs or "") and "Application.Read.All" in (r.needs or "")


def test_certificate_validity_only_for_entra_applications() -> None:
    assert run(certificate_validity, {"target.variant": "podIdentity"}).status == Status.SKIPPED
    assert run(certificate_validity, AAD).status == Status.SKIPPED  # no source at all


def test_certificate_registered() -> None:
    facts = {**AAD, "azure.keyvault_certificate": kv_cert(200, "CC" * 20), "azure.application": app(("AA" * 20, 65))}
    r = run(certificate_registered, facts)
    assert codes(r) == ["CERT_NOT_REGISTERED"] and "CC" * 20 in r.summary
    assert any("az ad app credential reset --id" in line and "--append" in line for line in r.findings[0].remediation)
    assert any("az keyvault certificate download --vault-name kv-prom -n prom-rw-cert" in line
               for line in r.findings[0].remediation)
    facts["azure.application"] = app(("AA" * 20, 65), ("CC" * 20, 200))
    assert run(certificate_registered, facts).status == Status.PASS


def test_certificate_registered_unknown_without_graph_and_skipped_without_app() -> None:
    facts = {**AAD, "azure.keyvault_certificate": kv_cert(200),
             "azure.application": Denied(AccessDenied("Microsoft Graph Application.Read.All"))}
    r = run(certificate_registered, facts)
    assert r.status == Status.UNKNOWN and "Application.Read.All" in (r.needs or "")
    assert run(certificate_registered, {**AAD, "azure.application": None}).status == Status.SKIPPED


# --------------------------------------------------------------------------- root causes across checks

def test_token_failure_is_a_consequence_of_an_expired_certificate() -> None:
    from promrw_doctor.core.engine import run_checks as engine_run

    failed = SidecarToken("file", "aadApplication", "https://monitor.azure.com", False, error="AADSTS700027: expired",
                          aadsts_code=700027)
    funcs = [certificate_validity, certificate_registered, sidecar_token, sidecar_token_claims]
    reg = Registry([spec(f) for f in funcs])
    st = store({**AAD, "azure.keyvault_certificate": kv_cert(-35), "azure.application": app(("AA" * 20, -35)),
                "azure.sidecar_token": failed})
    report = engine_run(reg, list(reg), [TARGET], st, command="test", options=EngineOptions(check_timeout_s=10))
    assert [rc.code for rc in report.root_causes] == ["CERT_EXPIRED"]
    assert "identity.sidecar-token" in report.root_causes[0].consequences


def test_dcr_not_found_blocks_the_role_and_dce_checks() -> None:
    from promrw_doctor.core.engine import run_checks as engine_run

    funcs = [ingestion_url, dcr_found, dce_match, identity_found, role_assignment, workspace_quota]
    reg = Registry([spec(f) for f in funcs])
    st = store({"azure.dcr": dcr_lookup(found=False)})
    report = engine_run(reg, list(reg), [TARGET], st, command="test", options=EngineOptions(check_timeout_s=10))
    assert [rc.code for rc in report.root_causes] == ["DCR_NOT_FOUND"]
    status = {r.check_id: r.status for r in report.results}
    assert status["azure.role-assignment"] == Status.BLOCKED and status["azure.dce-match"] == Status.BLOCKED
