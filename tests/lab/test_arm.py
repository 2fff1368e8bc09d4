"""The ARM emulator over real HTTPS with real bearer tokens, read with ``requests`` like the doctor will.

Every route the doctor relies on, ARM's filters and error shapes (400/401/403/404), the
``doctor_denied`` switches, and the request log proving only reads happened.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
from aiohttp import web

from promrw_doctor.lab.azure_state import (
    ROLE_IDS,
    Application,
    AzureState,
    DataCollectionEndpoint,
    DataCollectionRule,
    ManagedCluster,
    ManagedIdentity,
    RoleAssignment,
    Workspace,
    utcnow,
)
from promrw_doctor.lab.emulators import arm
from promrw_doctor.lab.emulators.azure_common import request_log
from promrw_doctor.lab.server import LabServer
from promrw_doctor.lab.tokens import TokenIssuer

from .conftest import LabPki

TENANT = "72f988bf-0000-0000-0000-000000000001"
SUB = "00000000-0000-0000-0000-0000000000aa"
ARM_AUD = "https://management.core.windows.net/"
DOCTOR_APP = "d0c70000-0000-0000-0000-000000000001"
DOCTOR_OID = "d0c70000-0000-0000-0000-0000000000ff"
DOCTOR_SECRET = "lab-doctor-secret-value"
MI_CLIENT = "11111111-0000-0000-0000-000000000001"
MI_PRINCIPAL = "11111111-0000-0000-0000-0000000000ff"
KUBELET_CLIENT = "22222222-0000-0000-0000-000000000001"
KUBELET_PRINCIPAL = "22222222-0000-0000-0000-0000000000ff"
MMP = "Monitoring Metrics Publisher"

MA_RG = "MA_amw-lab_eastus_managed"
S = f"/subscriptions/{SUB}"
MA = f"{S}/resourceGroups/{MA_RG}"
AKS_RG = f"{S}/resourceGroups/rg-aks"
DCE_ID = f"{MA}/providers/Microsoft.Insights/dataCollectionEndpoints/amw-lab"
DCR_ID = f"{MA}/providers/Microsoft.Insights/dataCollectionRules/amw-lab"
WS_ID = f"{S}/resourceGroups/rg-monitoring/providers/Microsoft.Monitor/accounts/amw-lab"
AKS_ID = f"{AKS_RG}/providers/Microsoft.ContainerService/managedClusters/aks-lab"
MI_ID = f"{AKS_RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/prom-rw-mi"
RA_PATH = "/providers/Microsoft.Authorization/roleAssignments"
RD_PATH = "/providers/Microsoft.Authorization/roleDefinitions"
DCR_IMMUTABLE = "dcr-0123456789abcdef0123456789abcdef"
NODE_RG = "MC_rg-aks_aks-lab_eastus"
OIDC = "https://eastus.oic.prod-aks.azure.com/tenant/issuer/"


def _ra(name: str, scope: str, role: str, principal: str, minutes_ago: int) -> RoleAssignment:
    return RoleAssignment(
        id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", name=name, scope=scope,
        role_definition_id=f"{S}/providers/Microsoft.Authorization/roleDefinitions/{ROLE_IDS[role]}",
        principal_id=principal, principal_type="ServicePrincipal",
        created_on=utcnow() - timedelta(minutes=minutes_ago))


RA_DCR = "aaaaaaaa-0000-0000-0000-000000000001"
RA_SUB = "aaaaaaaa-0000-0000-0000-000000000002"
RA_NODE = "aaaaaaaa-0000-0000-0000-000000000003"
RA_WS = "aaaaaaaa-0000-0000-0000-000000000004"


def build_state() -> AzureState:
    kubelet = ManagedIdentity("aks-lab-agentpool", NODE_RG, KUBELET_CLIENT, KUBELET_PRINCIPAL)
    return AzureState(
        tenant_id=TENANT, subscription_id=SUB,
        identities=[ManagedIdentity("prom-rw-mi", "rg-aks", MI_CLIENT, MI_PRINCIPAL)],
        applications=[Application(DOCTOR_APP, "d0c70000-0000-0000-0000-0000000000aa", DOCTOR_OID, "doctor",
                                  client_secrets=[DOCTOR_SECRET])],
        role_assignments=[
            _ra(RA_DCR, DCR_ID, MMP, MI_PRINCIPAL, 240),
            _ra(RA_SUB, f"/subscriptions/{SUB}", "Reader", MI_PRINCIPAL, 600),
            _ra(RA_NODE, f"{S}/resourceGroups/{NODE_RG}", "Managed Identity Operator",
                KUBELET_PRINCIPAL, 600),
            _ra(RA_WS, WS_ID, "Monitoring Data Reader", DOCTOR_OID, 5),
        ],
        dces=[DataCollectionEndpoint(DCE_ID, "amw-lab", "eastus", "dce-0123456789abcdef0123456789abcdef",
                                     "amw-lab-a1b2.eastus-1.metrics.ingest.monitor.azure.com")],
        dcrs=[DataCollectionRule(DCR_ID, "amw-lab", "eastus", DCR_IMMUTABLE, DCE_ID)],
        workspaces=[Workspace(WS_ID, "amw-lab", "eastus", DCR_ID, DCE_ID,
                              "https://amw-lab-abcd.eastus.prometheus.monitor.azure.com")],
        clusters=[ManagedCluster(AKS_ID, "aks-lab", "eastus", NODE_RG, kubelet, oidc_issuer=OIDC)],
        doctor_app_id=DOCTOR_APP,
    )


@dataclass
class Lab:
    url: str
    ca: str
    state: AzureState
    issuer: TokenIssuer
    app: web.Application
    token: str

    def get(self, path: str, *, api: str | None = "2022-06-01", token: str | None = "default",
            method: str = "GET", **params: str) -> requests.Response:
        q = dict(params)
        if api is not None:
            q["api-version"] = api
        headers = {}
        tok = self.token if token == "default" else token
        if tok is not None:
            headers["Authorization"] = f"Bearer {tok}"
        return requests.request(method, self.url + path, params=q, headers=headers, verify=self.ca,
                                timeout=10)


@pytest.fixture(scope="module")
def lab(lab_pki: LabPki) -> Iterator[Lab]:
    state = build_state()
    issuer = TokenIssuer(TENANT)
    app = arm.make_app(state, issuer, audience=ARM_AUD, extra_audiences=["https://management.azure.com"])
    token, _ = issuer.mint(audience=ARM_AUD, client_id=DOCTOR_APP, principal_id=DOCTOR_OID)
    with LabServer() as server:
        ep = server.add("arm", app, ssl_context=lab_pki.server_ssl)
        yield Lab(ep.url, str(lab_pki.ca_bundle), state, issuer, app, token)


@pytest.fixture(autouse=True)
def _reset_denials(lab: Lab) -> Iterator[None]:
    yield
    lab.state.doctor_denied.clear()


# ----------------------------------------------------------------------------------------- resources

def test_dcr_get_by_id_is_case_insensitive_and_links_dce_and_workspace(lab: Lab) -> None:
    r = lab.get(DCR_ID.lower())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == DCR_ID and body["type"] == "Microsoft.Insights/dataCollectionRules"
    p = body["properties"]
    assert p["immutableId"] == DCR_IMMUTABLE
    assert p["dataCollectionEndpointId"] == DCE_ID
    assert p["dataFlows"] == [{"streams": ["Microsoft-PrometheusMetrics"],
                               "destinations": ["MonitoringAccount1"]}]
    assert p["dataSources"]["prometheusForwarder"][0]["streams"] == ["Microsoft-PrometheusMetrics"]
    acct = p["destinations"]["monitoringAccounts"][0]
    assert acct["accountResourceId"] == WS_ID and acct["name"] == "MonitoringAccount1"
    ws = lab.get(WS_ID, api="2023-04-03").json()
    assert acct["accountId"] == ws["properties"]["accountId"]
    assert lab.get(DCR_ID, api="2023-03-11").status_code == 200


def test_dcr_list_by_subscription_and_resource_group(lab: Lab) -> None:
    by_sub = lab.get(f"{S}/providers/Microsoft.Insights/dataCollectionRules")
    assert [d["id"] for d in by_sub.json()["value"]] == [DCR_ID]
    by_rg = lab.get(f"{MA}/providers/Microsoft.Insights/dataCollectionRules")
    assert [d["name"] for d in by_rg.json()["value"]] == ["amw-lab"]
    other = lab.get(f"{AKS_RG}/providers/Microsoft.Insights/dataCollectionRules")
    assert other.status_code == 200 and other.json() == {"value": []}


def test_dce_endpoints_and_old_api_version_has_no_metrics_ingestion(lab: Lab) -> None:
    p = lab.get(DCE_ID).json()["properties"]
    assert p["metricsIngestion"]["endpoint"] == "https://amw-lab-a1b2.eastus-1.metrics.ingest.monitor.azure.com"
    assert p["logsIngestion"]["endpoint"] == "https://amw-lab-a1b2.eastus-1.ingest.monitor.azure.com"
    assert p["configurationAccess"]["endpoint"].startswith("https://amw-lab-a1b2.eastus-1.handler.control.")
    assert p["immutableId"] == "dce-0123456789abcdef0123456789abcdef"
    assert "metricsIngestion" not in lab.get(DCE_ID, api="2021-04-01").json()["properties"]
    listed = lab.get(f"{S}/providers/Microsoft.Insights/dataCollectionEndpoints").json()
    assert [d["id"] for d in listed["value"]] == [DCE_ID]


def test_workspace_get_and_list(lab: Lab) -> None:
    body = lab.get(WS_ID, api="2023-04-03").json()
    assert body["type"] == "Microsoft.Monitor/accounts" and body["location"] == "eastus"
    p = body["properties"]
    assert p["metrics"]["prometheusQueryEndpoint"] == "https://amw-lab-abcd.eastus.prometheus.monitor.azure.com"
    assert p["metrics"]["internalId"] == f"mac_{p['accountId']}"
    assert p["defaultIngestionSettings"] == {"dataCollectionRuleResourceId": DCR_ID,
                                             "dataCollectionEndpointResourceId": DCE_ID}
    listed = lab.get(f"{S}/providers/Microsoft.Monitor/accounts", api="2023-04-03").json()
    assert [w["name"] for w in listed["value"]] == ["amw-lab"]


def test_user_assigned_identities_include_the_kubelet_identity(lab: Lab) -> None:
    body = lab.get(MI_ID, api="2023-01-31").json()
    assert body["properties"] == {"isolationScope": "None", "tenantId": TENANT, "principalId": MI_PRINCIPAL,
                                  "clientId": MI_CLIENT}
    listed = lab.get(f"{S}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                     api="2023-01-31").json()["value"]
    assert {i["properties"]["clientId"] for i in listed} == {MI_CLIENT, KUBELET_CLIENT}
    node = lab.get(f"{S}/resourceGroups/{NODE_RG}/providers/Microsoft.ManagedIdentity/"
                   "userAssignedIdentities", api="2023-01-31").json()["value"]
    assert [i["name"] for i in node] == ["aks-lab-agentpool"]


def test_managed_cluster_get_and_list(lab: Lab) -> None:
    body = lab.get(AKS_ID, api="2024-05-01").json()
    assert body["type"] == "Microsoft.ContainerService/ManagedClusters"
    p = body["properties"]
    assert p["nodeResourceGroup"] == NODE_RG
    kubelet = p["identityProfile"]["kubeletidentity"]
    assert kubelet["clientId"] == KUBELET_CLIENT and kubelet["objectId"] == KUBELET_PRINCIPAL
    assert kubelet["resourceId"].endswith(f"/resourceGroups/{NODE_RG}/providers/Microsoft.ManagedIdentity/"
                                          "userAssignedIdentities/aks-lab-agentpool")
    assert p["oidcIssuerProfile"] == {"enabled": True, "issuerURL": OIDC}
    listed = lab.get(f"{S}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/"
                     "managedClusters", api="2024-05-01").json()
    assert [c["id"] for c in listed["value"]] == [AKS_ID]


def test_subscription_and_resource_groups(lab: Lab) -> None:
    sub = lab.get(f"/subscriptions/{SUB}", api="2022-12-01").json()
    assert sub["subscriptionId"] == SUB and sub["tenantId"] == TENANT and sub["state"] == "Enabled"
    rg = lab.get(f"/subscriptions/{SUB}/resourcegroups/rg-AKS", api="2021-04-01").json()
    assert rg["id"] == f"{S}/resourceGroups/rg-aks" and rg["location"] == "eastus"
    node = lab.get(f"/subscriptions/{SUB}/resourcegroups/{NODE_RG}", api="2021-04-01").json()
    assert node["managedBy"] == AKS_ID
    groups = lab.get(f"{S}/resourcegroups", api="2021-04-01").json()["value"]
    names = {g["name"] for g in groups}
    assert names == {"rg-aks", "rg-monitoring", MA_RG, NODE_RG}
    assert lab.get(f"{S}/resourcegroups/rg-aks", api="2021-04-01", method="HEAD").status_code == 204
    assert lab.get(f"{S}/resourcegroups/nope", api="2021-04-01", method="HEAD").status_code == 404


SUB_API = "2022-12-01"


def test_subscriptions_list_is_the_state_subscription_in_the_get_shape(lab: Lab) -> None:
    listed = lab.get("/subscriptions", api=SUB_API)
    assert listed.status_code == 200, listed.text
    value = listed.json()["value"]
    assert [s["subscriptionId"] for s in value] == [SUB]
    one = lab.get(f"/subscriptions/{SUB}", api=SUB_API).json()
    assert value == [one]  # the same document from the list and from the get
    assert one["id"] == S and one["tenantId"] == TENANT and one["authorizationSource"] == "RoleBased"
    assert lab.get("/subscriptions/", api="2020-01-01").json()["value"] == value  # trailing slash, older api


def test_subscriptions_list_names_every_subscription_the_world_implies(lab: Lab) -> None:
    other = "00000000-0000-0000-0000-0000000000bb"
    extra = _ra("aaaaaaaa-0000-0000-0000-0000000000ee", f"/subscriptions/{other}/resourceGroups/rg-x", "Reader",
                MI_PRINCIPAL, 600)
    with lab.state.lock:
        lab.state.role_assignments.append(extra)
    try:
        value = lab.get("/subscriptions", api=SUB_API).json()["value"]
        assert [s["subscriptionId"] for s in value] == [SUB, other]  # the state's own first
        for item in value:
            assert lab.get(item["id"], api=SUB_API).json() == item
    finally:
        with lab.state.lock:
            lab.state.role_assignments.remove(extra)


def test_subscriptions_list_checks_token_and_api_version(lab: Lab) -> None:
    assert lab.get("/subscriptions", api=SUB_API, token=None).status_code == 401
    missing = lab.get("/subscriptions", api=None)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "MissingApiVersionParameter"
    bad = lab.get("/subscriptions", api="2099-01-01")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidApiVersionParameter"
    assert "2022-12-01" in bad.json()["error"]["message"]
    assert lab.get("/subscriptions", api=SUB_API, method="DELETE").status_code == 405


def test_denied_subscription_read_empties_the_list_and_refuses_the_get(lab: Lab) -> None:
    lab.state.doctor_denied.add("arm:subscriptions/read")
    listed = lab.get("/subscriptions", api=SUB_API)
    assert listed.status_code == 200 and listed.json()["value"] == []  # ARM lists only what one may read
    r = lab.get(f"/subscriptions/{SUB}", api=SUB_API)
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "AuthorizationFailed"
    assert err["message"].startswith(
        f"The client '{DOCTOR_OID}' with object id '{DOCTOR_OID}' does not have authorization to perform "
        f"action 'Microsoft.Resources/subscriptions/read' over scope '{S}'")
    # A subscription that does not exist is still 404 (existence before permission), and the switch
    # concerns only the subscription itself: resource groups and resources stay readable.
    gone = lab.get("/subscriptions/99999999-0000-0000-0000-000000000000", api=SUB_API)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "SubscriptionNotFound"
    assert lab.get(f"{S}/resourcegroups/rg-aks", api="2021-04-01").status_code == 200
    assert lab.get(DCR_ID).status_code == 200


# ---------------------------------------------------------------------------------- role assignments

def _ra_names(r: requests.Response) -> set[str]:
    assert r.status_code == 200, r.text
    return {a["name"] for a in r.json()["value"]}


def test_role_assignments_without_filter_are_at_above_and_below(lab: Lab) -> None:
    path = f"{S}/resourceGroups/{MA_RG}{RA_PATH}"
    assert _ra_names(lab.get(path, api="2022-04-01")) == {RA_DCR, RA_SUB}
    sub_path = f"{S}{RA_PATH}"
    assert _ra_names(lab.get(sub_path, api="2022-04-01")) == {RA_DCR, RA_SUB, RA_NODE, RA_WS}


def test_role_assignments_filters(lab: Lab) -> None:
    path = f"{DCR_ID}{RA_PATH}"
    assert _ra_names(lab.get(path, api="2022-04-01", **{"$filter": "atScope()"})) == {RA_DCR, RA_SUB}
    sub_path = f"{S}{RA_PATH}"
    assert _ra_names(lab.get(sub_path, api="2022-04-01", **{"$filter": "atScope()"})) == {RA_SUB}
    assert _ra_names(lab.get(sub_path, api="2022-04-01",
                             **{"$filter": f"principalId eq '{MI_PRINCIPAL.upper()}'"})) == {RA_DCR, RA_SUB}
    assert _ra_names(lab.get(sub_path, api="2022-04-01",
                             **{"$filter": f"assignedTo('{KUBELET_PRINCIPAL}')"})) == {RA_NODE}
    both = lab.get(path, api="2022-04-01", **{"$filter": f"atScope() and assignedTo('{MI_PRINCIPAL}')"})
    assert _ra_names(both) == {RA_DCR, RA_SUB}
    bad = lab.get(path, api="2022-04-01", **{"$filter": "roleDefinitionId eq 'x'"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "UnsupportedQuery"


def test_role_assignment_shape_and_get_by_id(lab: Lab) -> None:
    ra_id = f"{DCR_ID}/providers/Microsoft.Authorization/roleAssignments/{RA_DCR}"
    body = lab.get(ra_id, api="2022-04-01").json()
    assert body["id"] == ra_id and body["type"] == "Microsoft.Authorization/roleAssignments"
    p = body["properties"]
    assert p["roleDefinitionId"].endswith(ROLE_IDS[MMP]) and p["principalId"] == MI_PRINCIPAL
    assert p["principalType"] == "ServicePrincipal" and p["scope"] == DCR_ID
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", p["createdOn"])
    missing = lab.get(f"{DCR_ID}{RA_PATH}/{RA_SUB}", api="2022-04-01")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "RoleAssignmentNotFound"


def test_role_assignments_follow_state_changes(lab: Lab) -> None:
    path = f"{DCR_ID}{RA_PATH}"
    with lab.state.lock:
        removed = lab.state.role_assignments.pop(0)
    try:
        assert _ra_names(lab.get(path, api="2022-04-01")) == {RA_SUB}
    finally:
        with lab.state.lock:
            lab.state.role_assignments.insert(0, removed)


# ---------------------------------------------------------------------------------- role definitions

def test_role_definitions(lab: Lab) -> None:
    one = lab.get(f"{DCR_ID}{RD_PATH}/{ROLE_IDS[MMP]}", api="2022-04-01")
    body = one.json()
    assert body["id"] == f"{S}{RD_PATH}/{ROLE_IDS[MMP]}"
    assert body["properties"]["roleName"] == MMP and body["properties"]["type"] == "BuiltInRole"
    assert body["properties"]["permissions"][0]["dataActions"] == ["Microsoft.Insights/Metrics/Write",
                                                                   "Microsoft.Insights/Telemetry/Write"]
    listed = lab.get(f"{S}/providers/Microsoft.Authorization/roleDefinitions",
                     api="2022-04-01", **{"$filter": "roleName eq 'monitoring metrics publisher'"}).json()
    assert [d["name"] for d in listed["value"]] == [ROLE_IDS[MMP]]
    everything = lab.get(f"{S}/providers/Microsoft.Authorization/roleDefinitions",
                         api="2022-04-01").json()["value"]
    assert {d["name"] for d in everything} == set(ROLE_IDS.values())
    nope = lab.get(f"{S}/providers/Microsoft.Authorization/roleDefinitions/"
                   "00000000-1111-2222-3333-444444444444", api="2022-04-01")
    assert nope.status_code == 404 and nope.json()["error"]["code"] == "RoleDefinitionDoesNotExist"


# ----------------------------------------------------------------------------------------- 400 / 404

def test_api_version_is_required_and_validated(lab: Lab) -> None:
    r = lab.get(DCR_ID, api=None)
    assert r.status_code == 400
    assert r.json() == {"error": {
        "code": "MissingApiVersionParameter",
        "message": "The api-version query parameter (?api-version=) is required for all requests."}}
    bad = lab.get(DCR_ID, api="2099-01-01")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "NoRegisteredProviderFound"
    assert "2022-06-01" in bad.json()["error"]["message"]
    ws = lab.get(WS_ID, api="2022-06-01")  # a DCR api-version is not a Microsoft.Monitor/accounts one
    assert ws.status_code == 400 and ws.json()["error"]["code"] == "NoRegisteredProviderFound"
    rg = lab.get(f"/subscriptions/{SUB}/resourcegroups/rg-aks", api="2099-01-01")
    assert rg.status_code == 400 and rg.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_not_found_shapes(lab: Lab) -> None:
    r = lab.get(DCR_ID.replace("amw-lab", "nope", 1).rsplit("/", 1)[0] + "/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] in ("ResourceNotFound", "ResourceGroupNotFound")
    missing = lab.get(DCR_ID[: DCR_ID.rindex("/")] + "/other")
    assert missing.status_code == 404
    err = missing.json()["error"]
    assert err["code"] == "ResourceNotFound"
    assert err["message"].startswith("The Resource 'Microsoft.Insights/dataCollectionRules/other' under "
                                     f"resource group '{MA_RG}' was not found.")
    rg = lab.get(f"{S}/resourceGroups/rg-gone/providers/Microsoft.Insights/dataCollectionRules/x")
    assert rg.status_code == 404
    assert rg.json()["error"] == {"code": "ResourceGroupNotFound",
                                  "message": "Resource group 'rg-gone' could not be found."}
    sub = lab.get("/subscriptions/99999999-0000-0000-0000-000000000000", api="2022-12-01")
    assert sub.status_code == 404 and sub.json()["error"]["code"] == "SubscriptionNotFound"
    kv = lab.get(f"{S}/resourceGroups/rg-aks/providers/Microsoft.KeyVault/vaults/kv-prom")
    assert kv.status_code == 404 and kv.json()["error"]["code"] == "ResourceNotFound"
    ns = lab.get(f"{S}/providers/Microsoft.Nope/things")
    assert ns.status_code == 400 and ns.json()["error"]["code"] == "InvalidResourceNamespace"


# --------------------------------------------------------------------------------------------- 401

def test_missing_token_is_authentication_failed_with_challenge(lab: Lab) -> None:
    r = lab.get(DCR_ID, token=None)
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "AuthenticationFailed",
                                  "message": "Authentication failed. The 'Authorization' header is missing."}}
    assert r.headers["WWW-Authenticate"].startswith('Bearer authorization_uri="https://login.windows.net/"')


@pytest.mark.parametrize("case, code", [
    ("garbage", "InvalidAuthenticationToken"),
    ("signature", "InvalidAuthenticationToken"),
    ("expired", "ExpiredAuthenticationToken"),
    ("audience", "InvalidAuthenticationTokenAudience"),
    ("tenant", "InvalidAuthenticationTokenTenant"),
])
def test_invalid_tokens_get_arm_codes(lab: Lab, case: str, code: str) -> None:
    now = int(time.time())
    token = {
        "garbage": lambda: "not-a-jwt",
        "signature": lambda: TokenIssuer(TENANT).mint(audience=ARM_AUD, client_id=DOCTOR_APP,
                                                      principal_id=DOCTOR_OID)[0],
        "expired": lambda: lab.issuer.mint(audience=ARM_AUD, client_id=DOCTOR_APP, principal_id=DOCTOR_OID,
                                           not_before=now - 7200, lifetime_s=3600)[0],
        "audience": lambda: lab.issuer.mint(audience="https://monitor.azure.com", client_id=DOCTOR_APP,
                                            principal_id=DOCTOR_OID)[0],
        "tenant": lambda: lab.issuer.mint(audience=ARM_AUD, client_id=DOCTOR_APP, principal_id=DOCTOR_OID,
                                          tenant_id="00000000-dead-0000-0000-000000000000")[0],
    }[case]()
    r = lab.get(DCR_ID, token=token)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == code
    assert token not in r.text
    if case == "audience":
        assert "'https://monitor.azure.com'" in err["message"]
    if case == "tenant":
        assert f"'https://sts.windows.net/{TENANT}/'" in err["message"]


def test_arm_endpoint_audience_is_accepted_too(lab: Lab) -> None:
    token, _ = lab.issuer.mint(audience="https://management.azure.com/", client_id=DOCTOR_APP,
                               principal_id=DOCTOR_OID)
    assert lab.get(DCR_ID, token=token).status_code == 200


# --------------------------------------------------------------------------------------------- 403

@pytest.mark.parametrize("permission, path, api, action", [
    ("arm:roleAssignments/read", f"{DCR_ID}{RA_PATH}", "2022-04-01",
     "Microsoft.Authorization/roleAssignments/read"),
    ("arm:roleDefinitions/read", f"{S}/providers/Microsoft.Authorization/roleDefinitions/"
     f"{ROLE_IDS[MMP]}", "2022-04-01", "Microsoft.Authorization/roleDefinitions/read"),
    ("arm:dataCollectionRules/read", DCR_ID, "2022-06-01", "Microsoft.Insights/dataCollectionRules/read"),
    ("arm:dataCollectionEndpoints/read", DCE_ID, "2022-06-01",
     "Microsoft.Insights/dataCollectionEndpoints/read"),
    ("arm:accounts/read", WS_ID, "2023-04-03", "Microsoft.Monitor/accounts/read"),
    ("arm:userAssignedIdentities/read", MI_ID, "2023-01-31",
     "Microsoft.ManagedIdentity/userAssignedIdentities/read"),
    ("arm:managedClusters/read", AKS_ID, "2024-05-01", "Microsoft.ContainerService/managedClusters/read"),
])
def test_doctor_denied_switches_give_authorization_failed(lab: Lab, permission: str, path: str, api: str,
                                                          action: str) -> None:
    assert lab.get(path, api=api).status_code == 200
    lab.state.doctor_denied.add(permission)
    r = lab.get(path, api=api)
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "AuthorizationFailed"
    scope = path.split("/providers/Microsoft.Authorization/roleDefinitions")[0].split(
        RA_PATH)[0]
    assert err["message"].startswith(
        f"The client '{DOCTOR_OID}' with object id '{DOCTOR_OID}' does not have authorization to perform "
        f"action '{action}' over scope '{scope}")
    assert "or the scope is invalid." in err["message"]
    # Other reads stay allowed.
    assert lab.get(f"/subscriptions/{SUB}", api="2022-12-01").status_code == 200


def test_denial_applies_to_lists_too(lab: Lab) -> None:
    lab.state.doctor_denied.add("arm:dataCollectionRules/read")
    r = lab.get(f"{S}/providers/Microsoft.Insights/dataCollectionRules")
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"


# ------------------------------------------------------------------------------------- writes / log

@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
def test_writes_are_refused_and_recorded(lab: Lab, method: str) -> None:
    before = len(request_log(lab.app))
    r = lab.get(DCR_ID, method=method)
    assert r.status_code == 405 and r.json()["error"]["code"] == "MethodNotAllowed"
    assert request_log(lab.app)[before:] == [(method, r.request.path_url)]
    assert lab.get(DCR_ID).status_code == 200  # nothing changed


def test_request_log_shows_only_reads_for_a_doctor_like_session(lab: Lab) -> None:
    log = request_log(lab.app)
    before = len(log)
    lab.get(WS_ID, api="2023-04-03")
    lab.get(DCR_ID)
    lab.get(f"{DCR_ID}{RA_PATH}", api="2022-04-01",
            **{"$filter": "atScope()"})
    new = log[before:]
    assert [m for m, _ in new] == ["GET", "GET", "GET"]
    assert new[2][1].startswith(f"{DCR_ID}/providers/Microsoft.Authorization/roleAssignments?")
    assert all(lab.token not in p for _, p in new)


def test_handler_bug_is_a_500_in_arm_shape(lab: Lab) -> None:
    broken = DataCollectionRule(DCR_ID + "-broken", "amw-lab-broken", "eastus", "dcr-x", DCE_ID,
                                streams=None)  # type: ignore[arg-type]
    with lab.state.lock:
        lab.state.dcrs.append(broken)
    try:
        r = lab.get(broken.id)
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "InternalServerError"
    finally:
        with lab.state.lock:
            lab.state.dcrs.remove(broken)


# ------------------------------------------------------------------------ real credential, real Entra

def test_token_from_azure_identity_against_the_entra_emulator(lab: Lab, lab_pki: LabPki,
                                                              clean_identity_env: pytest.MonkeyPatch) -> None:
    from azure.identity import ClientSecretCredential

    from promrw_doctor.lab.emulators import entra

    with LabServer() as server:
        ep = server.add("entra", entra.make_app(lab.state, lab.issuer), ssl_context=lab_pki.server_ssl)
        cred = ClientSecretCredential(TENANT, DOCTOR_APP, DOCTOR_SECRET, authority=ep.url,
                                      disable_instance_discovery=True, connection_verify=lab.ca)
        token = cred.get_token("https://management.core.windows.net//.default").token
    r = lab.get(f"{DCR_ID}{RA_PATH}", api="2022-04-01", token=token)
    assert r.status_code == 200 and RA_DCR in {a["name"] for a in r.json()["value"]}
