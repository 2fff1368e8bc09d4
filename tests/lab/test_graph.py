"""The Graph emulator over real HTTPS: applications, service principals (managed identities too),
``$select``/``$filter``, ``keyCredentials`` matching a real certificate, and Graph's error shapes."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from aiohttp import web

from promrw_doctor.lab.azure_state import (
    Application,
    AzureState,
    KeyCredential,
    ManagedCluster,
    ManagedIdentity,
)
from promrw_doctor.lab.emulators import graph
from promrw_doctor.lab.emulators.azure_common import request_log
from promrw_doctor.lab.server import LabServer
from promrw_doctor.lab.tokens import TokenIssuer

from .conftest import ClientCerts, LabPki

TENANT = "72f988bf-0000-0000-0000-000000000001"
SUB = "00000000-0000-0000-0000-0000000000aa"
GRAPH = "https://graph.microsoft.com"
APP_ID = "33333333-0000-0000-0000-000000000001"
APP_OBJ = "33333333-0000-0000-0000-0000000000aa"
APP_SP = "33333333-0000-0000-0000-0000000000ff"
DOCTOR_APP = "d0c70000-0000-0000-0000-000000000001"
DOCTOR_OID = "d0c70000-0000-0000-0000-0000000000ff"
DOCTOR_SECRET = "Abc-doctor-secret-value"
MI_CLIENT = "11111111-0000-0000-0000-000000000001"
MI_PRINCIPAL = "11111111-0000-0000-0000-0000000000ff"
KUBELET_CLIENT = "22222222-0000-0000-0000-000000000001"
KUBELET_PRINCIPAL = "22222222-0000-0000-0000-0000000000ff"
KEY_ID = "44444444-0000-0000-0000-000000000001"
OLD_KEY_ID = "44444444-0000-0000-0000-000000000002"


@dataclass
class Lab:
    url: str
    ca: str
    state: AzureState
    issuer: TokenIssuer
    app: web.Application
    token: str
    certs: ClientCerts

    def get(self, path: str, *, token: str | None = "default", method: str = "GET",
            **params: str) -> requests.Response:
        tok = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {tok}"} if tok is not None else {}
        return requests.request(method, self.url + path, params=params, headers=headers, verify=self.ca,
                                timeout=10)


@pytest.fixture(scope="module")
def lab(lab_pki: LabPki, client_certs: ClientCerts) -> Iterator[Lab]:
    valid, expired = client_certs.valid, client_certs.expired
    kcs = [KeyCredential(KEY_ID, valid.thumbprint, valid.not_before, valid.not_after, "", valid.der),
           KeyCredential(OLD_KEY_ID, expired.thumbprint, expired.not_before, expired.not_after,
                         "CN=prom-remotewrite-old", expired.der)]
    kubelet = ManagedIdentity("aks-lab-agentpool", "", KUBELET_CLIENT, KUBELET_PRINCIPAL)
    state = AzureState(
        tenant_id=TENANT, subscription_id=SUB,
        identities=[ManagedIdentity("prom-rw-mi", "rg-aks", MI_CLIENT, MI_PRINCIPAL)],
        applications=[Application(APP_ID, APP_OBJ, APP_SP, "prom-rw", key_credentials=kcs),
                      Application(DOCTOR_APP, "d0c70000-0000-0000-0000-0000000000aa", DOCTOR_OID, "doctor",
                                  client_secrets=[DOCTOR_SECRET])],
        clusters=[ManagedCluster(f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/"
                                 "Microsoft.ContainerService/managedClusters/aks-lab", "aks-lab", "eastus",
                                 "MC_rg-aks_aks-lab_eastus", kubelet)],
        doctor_app_id=DOCTOR_APP)
    issuer = TokenIssuer(TENANT)
    app = graph.make_app(state, issuer, audience=GRAPH)
    token, _ = issuer.mint(audience=GRAPH, client_id=DOCTOR_APP, principal_id=DOCTOR_OID)
    with LabServer() as server:
        ep = server.add("graph", app, ssl_context=lab_pki.server_ssl)
        yield Lab(ep.url, str(lab_pki.ca_bundle), state, issuer, app, token, client_certs)


@pytest.fixture(autouse=True)
def _reset_denials(lab: Lab) -> Iterator[None]:
    yield
    lab.state.doctor_denied.clear()


# ------------------------------------------------------------------------------------- applications

def test_application_by_app_id_with_select_returns_only_selected_and_the_key(lab: Lab) -> None:
    r = lab.get(f"/v1.0/applications(appId='{APP_ID}')", **{"$select": "id,appId,displayName,keyCredentials"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"@odata.context", "id", "appId", "displayName", "keyCredentials"}
    assert body["@odata.context"].endswith("/v1.0/$metadata#applications(id,appId,displayName,keyCredentials)"
                                           "/$entity")
    assert (body["id"], body["appId"], body["displayName"]) == (APP_OBJ, APP_ID, "prom-rw")
    current = next(k for k in body["keyCredentials"] if k["keyId"] == KEY_ID)
    cert = lab.certs.valid
    # The doctor matches the mounted certificate by SHA-1 thumbprint against customKeyIdentifier.
    assert base64.b64decode(current["customKeyIdentifier"]) == hashlib.sha1(cert.der).digest()
    assert base64.b64decode(current["customKeyIdentifier"]).hex().upper() == cert.thumbprint
    assert base64.b64decode(current["key"]) == cert.der
    assert current["type"] == "AsymmetricX509Cert" and current["usage"] == "Verify"
    assert current["displayName"] == "CN=prom-remotewrite"  # derived from the certificate when unset
    assert current["endDateTime"] == cert.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert current["startDateTime"] == cert.not_before.strftime("%Y-%m-%dT%H:%M:%SZ")
    old = next(k for k in body["keyCredentials"] if k["keyId"] == OLD_KEY_ID)
    assert old["displayName"] == "CN=prom-remotewrite-old"


def test_key_is_null_without_select_and_secrets_only_show_a_hint(lab: Lab) -> None:
    body = lab.get(f"/v1.0/applications(appId='{APP_ID}')").json()
    assert {k["key"] for k in body["keyCredentials"]} == {None}
    assert body["signInAudience"] == "AzureADMyOrg" and body["passwordCredentials"] == []
    doctor = lab.get(f"/v1.0/applications(appId='{DOCTOR_APP}')").json()
    assert [p["hint"] for p in doctor["passwordCredentials"]] == ["Abc"]
    assert DOCTOR_SECRET not in str(doctor)


def test_application_by_object_id_and_case_insensitive_select(lab: Lab) -> None:
    body = lab.get(f"/v1.0/applications/{APP_OBJ}", **{"$select": "APPID,keycredentials"}).json()
    assert body["appId"] == APP_ID and base64.b64decode(body["keyCredentials"][0]["key"])


def test_application_list_filter_never_returns_the_key(lab: Lab) -> None:
    r = lab.get("/v1.0/applications", **{"$filter": f"appId eq '{APP_ID}'", "$select": "id,keyCredentials"})
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#applications(id,keyCredentials)")
    assert [a["id"] for a in body["value"]] == [APP_OBJ]
    assert {k["key"] for k in body["value"][0]["keyCredentials"]} == {None}
    assert lab.get("/v1.0/applications", **{"$filter": "appId eq 'nope'"}).json()["value"] == []
    assert len(lab.get("/v1.0/applications").json()["value"]) == 2
    bad = lab.get("/v1.0/applications", **{"$filter": "notes eq 'x'"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_not_found_and_bad_ids_have_graph_shape(lab: Lab) -> None:
    missing = "55555555-0000-0000-0000-000000000000"
    r = lab.get(f"/v1.0/applications(appId='{missing}')")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "Request_ResourceNotFound"
    assert err["message"] == (f"Resource '{missing}' does not exist or one of its queried reference-property "
                              "objects are not present.")
    assert set(err["innerError"]) >= {"date", "request-id", "client-request-id"}
    assert r.headers["request-id"] == err["innerError"]["request-id"]
    bad = lab.get("/v1.0/applications/not-a-guid")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "Request_BadRequest"
    seg = lab.get("/v1.0/groups")
    assert seg.status_code == 400
    assert seg.json()["error"]["message"] == "Resource not found for the segment 'groups'."


# ------------------------------------------------------------------------------- service principals

def test_service_principal_of_an_application(lab: Lab) -> None:
    body = lab.get(f"/v1.0/servicePrincipals(appId='{APP_ID}')").json()
    assert body["id"] == APP_SP and body["appId"] == APP_ID
    assert body["servicePrincipalType"] == "Application" and body["keyCredentials"] == []
    by_id = lab.get(f"/v1.0/servicePrincipals/{APP_SP}", **{"$select": "id,appId"}).json()
    assert {k: v for k, v in by_id.items() if not k.startswith("@")} == {"id": APP_SP, "appId": APP_ID}


@pytest.mark.parametrize("client_id, principal, name, rg", [
    (MI_CLIENT, MI_PRINCIPAL, "prom-rw-mi", "rg-aks"),
    (KUBELET_CLIENT, KUBELET_PRINCIPAL, "aks-lab-agentpool", "MC_rg-aks_aks-lab_eastus"),
])
def test_managed_identities_resolve_by_client_id(lab: Lab, client_id: str, principal: str, name: str,
                                                 rg: str) -> None:
    listed = lab.get("/v1.0/servicePrincipals", **{"$filter": f"appId eq '{client_id.upper()}'"}).json()
    assert len(listed["value"]) == 1
    sp = listed["value"][0]
    assert (sp["id"], sp["appId"], sp["displayName"]) == (principal, client_id, name)
    assert sp["servicePrincipalType"] == "ManagedIdentity"
    assert sp["alternativeNames"][1].endswith(
        f"/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
    assert lab.get(f"/v1.0/servicePrincipals(appId='{client_id}')").json()["id"] == principal


def test_beta_is_served_too(lab: Lab) -> None:
    assert lab.get(f"/beta/servicePrincipals(appId='{APP_ID}')").json()["id"] == APP_SP


# ------------------------------------------------------------------------------------------ 401 / 403

def test_missing_token(lab: Lab) -> None:
    r = lab.get(f"/v1.0/applications(appId='{APP_ID}')", token=None)
    assert r.status_code == 401
    err = r.json()["error"]
    assert (err["code"], err["message"]) == ("InvalidAuthenticationToken", "Access token is empty.")
    assert "innerError" in err
    assert 'client_id="00000003-0000-0000-c000-000000000000"' in r.headers["WWW-Authenticate"]


@pytest.mark.parametrize("case, message", [
    ("expired", "Lifetime validation failed, the token is expired."),
    ("audience", "Access token validation failure. Invalid audience."),
    ("garbage", "CompactToken parsing failed with error code: 80049217"),
])
def test_invalid_tokens(lab: Lab, case: str, message: str) -> None:
    now = int(time.time())
    token = {
        "expired": lambda: lab.issuer.mint(audience=GRAPH, client_id=DOCTOR_APP, principal_id=DOCTOR_OID,
                                           not_before=now - 7200, lifetime_s=3600)[0],
        "audience": lambda: lab.issuer.mint(audience="https://management.core.windows.net/",
                                            client_id=DOCTOR_APP, principal_id=DOCTOR_OID)[0],
        "garbage": lambda: "garbage",
    }[case]()
    r = lab.get(f"/v1.0/applications(appId='{APP_ID}')", token=token)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert r.json()["error"]["message"] == message


def test_graph_app_id_audience_is_accepted(lab: Lab) -> None:
    token, _ = lab.issuer.mint(audience=graph.GRAPH_APP_ID, client_id=DOCTOR_APP, principal_id=DOCTOR_OID)
    assert lab.get(f"/v1.0/applications(appId='{APP_ID}')", token=token).status_code == 200


@pytest.mark.parametrize("path", [f"/v1.0/applications(appId='{APP_ID}')", "/v1.0/servicePrincipals",
                                  f"/v1.0/servicePrincipals(appId='{MI_CLIENT}')"])
def test_application_read_all_denied(lab: Lab, path: str) -> None:
    lab.state.doctor_denied.add("graph:Application.Read.All")
    r = lab.get(path)
    assert r.status_code == 403
    err = r.json()["error"]
    assert (err["code"], err["message"]) == ("Authorization_RequestDenied",
                                             "Insufficient privileges to complete the operation.")
    assert "request-id" in err["innerError"]


def test_denial_wins_over_not_found(lab: Lab) -> None:
    lab.state.doctor_denied.add("graph:Application.Read.All")
    assert lab.get("/v1.0/applications(appId='55555555-0000-0000-0000-000000000000')").status_code == 403


# ------------------------------------------------------------------------------------ writes and log

@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "PUT"])
def test_writes_are_refused_and_recorded(lab: Lab, method: str) -> None:
    log = request_log(lab.app)
    before = len(log)
    r = lab.get(f"/v1.0/applications/{APP_OBJ}", method=method)
    assert r.status_code == 405 and r.json()["error"]["code"] == "Request_BadRequest"
    assert [m for m, _ in log[before:]] == [method]


def test_request_log_records_reads_without_tokens(lab: Lab) -> None:
    log = request_log(lab.app)
    before = len(log)
    lab.get(f"/v1.0/applications(appId='{APP_ID}')", **{"$select": "keyCredentials"})
    lab.get("/v1.0/servicePrincipals", **{"$filter": f"appId eq '{MI_CLIENT}'"})
    new = log[before:]
    assert [m for m, _ in new] == ["GET", "GET"]
    assert new[0][1].startswith(f"/v1.0/applications(appId='{APP_ID}')?")
    assert all(lab.token not in p for _, p in new)


def test_token_from_azure_identity_against_the_entra_emulator(lab: Lab, lab_pki: LabPki,
                                                              clean_identity_env: pytest.MonkeyPatch) -> None:
    from azure.identity import ClientSecretCredential

    from promrw_doctor.lab.emulators import entra

    with LabServer() as server:
        ep = server.add("entra", entra.make_app(lab.state, lab.issuer), ssl_context=lab_pki.server_ssl)
        cred = ClientSecretCredential(TENANT, DOCTOR_APP, DOCTOR_SECRET, authority=ep.url,
                                      disable_instance_discovery=True, connection_verify=lab.ca)
        token = cred.get_token("https://graph.microsoft.com/.default").token
    r = lab.get(f"/v1.0/applications(appId='{APP_ID}')", token=token, **{"$select": "keyCredentials"})
    assert r.status_code == 200 and len(r.json()["keyCredentials"]) == 2
