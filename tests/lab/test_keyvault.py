"""The Key Vault certificates emulator over real HTTPS: CertificateBundle and policy shapes built from
real certificates, versions, Key Vault's 401 challenge, 403 for access-policy and RBAC vaults, 404s."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from aiohttp import web

from promrw_doctor.lab.azure_state import Application, AzureState, KeyVaultCertificate
from promrw_doctor.lab.emulators import keyvault
from promrw_doctor.lab.emulators.azure_common import request_log
from promrw_doctor.lab.pki import ClientCertificate
from promrw_doctor.lab.server import LabServer
from promrw_doctor.lab.tokens import TokenIssuer

from .conftest import ClientCerts, LabPki

TENANT = "72f988bf-0000-0000-0000-000000000001"
SUB = "00000000-0000-0000-0000-0000000000aa"
KV = "https://vault.azure.net"
AUTHORITY = "https://127.0.0.1:1"  # what the lab passes: its Entra emulator URL
DOCTOR_APP = "d0c70000-0000-0000-0000-000000000001"
DOCTOR_OID = "d0c70000-0000-0000-0000-0000000000ff"
DOCTOR_SECRET = "doctor-secret-value"
V_OLD = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
V_NEW = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
V_MANUAL = "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"


def _kv(name: str, version: str, cert: ClientCertificate, created_days_ago: int, *, auto_renew: bool = True,
        enabled: bool = True) -> KeyVaultCertificate:
    return KeyVaultCertificate(
        vault="kv-prom", name=name, version=version, cert_der=cert.der, x5t=cert.x5t,
        not_before=cert.not_before, expires=cert.not_after, enabled=enabled, auto_renew=auto_renew,
        created=datetime.now(UTC) - timedelta(days=created_days_ago))


@dataclass
class Lab:
    url: str
    ca: str
    state: AzureState
    issuer: TokenIssuer
    app: web.Application
    rbac_url: str
    token: str
    certs: ClientCerts

    def get(self, path: str, *, api: str | None = "7.4", token: str | None = "default", method: str = "GET",
            base: str | None = None) -> requests.Response:
        params = {"api-version": api} if api is not None else {}
        tok = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {tok}"} if tok is not None else {}
        return requests.request(method, (base or self.url) + path, params=params, headers=headers,
                                verify=self.ca, timeout=10)


@pytest.fixture(scope="module")
def lab(lab_pki: LabPki, client_certs: ClientCerts) -> Iterator[Lab]:
    state = AzureState(
        tenant_id=TENANT, subscription_id=SUB,
        applications=[Application(DOCTOR_APP, "d0c70000-0000-0000-0000-0000000000aa", DOCTOR_OID, "doctor",
                                  client_secrets=[DOCTOR_SECRET])],
        keyvault_certificates=[
            _kv("prom-rw-cert", V_OLD, client_certs.expired, 400),
            _kv("prom-rw-cert", V_NEW, client_certs.valid, 30),
            _kv("manual-cert", V_MANUAL, client_certs.unregistered, 1, auto_renew=False, enabled=False),
        ],
        doctor_app_id=DOCTOR_APP)
    issuer = TokenIssuer(TENANT)
    app = keyvault.make_app(state, issuer, audience=KV, authority=AUTHORITY)
    rbac = keyvault.make_app(state, issuer, audience=KV, authority=AUTHORITY, authorization="rbac",
                             vault_resource_group="rg-secrets")
    token, _ = issuer.mint(audience=KV, client_id=DOCTOR_APP, principal_id=DOCTOR_OID)
    with LabServer() as server:
        ep = server.add("keyvault", app, ssl_context=lab_pki.server_ssl)
        rbac_ep = server.add("keyvault-rbac", rbac, ssl_context=lab_pki.server_ssl)
        yield Lab(ep.url, str(lab_pki.ca_bundle), state, issuer, app, rbac_ep.url, token, client_certs)


@pytest.fixture(autouse=True)
def _reset_denials(lab: Lab) -> Iterator[None]:
    yield
    lab.state.doctor_denied.clear()


# ------------------------------------------------------------------------------------------- bundles

def test_latest_certificate_bundle(lab: Lab) -> None:
    r = lab.get("/kv-prom/certificates/prom-rw-cert")
    assert r.status_code == 200, r.text
    b = r.json()
    base = f"{lab.url}/kv-prom"
    assert b["id"] == f"{base}/certificates/prom-rw-cert/{V_NEW}"
    assert b["kid"] == f"{base}/keys/prom-rw-cert/{V_NEW}"
    assert b["sid"] == f"{base}/secrets/prom-rw-cert/{V_NEW}"
    cert = lab.certs.valid
    assert b["x5t"] == cert.x5t and base64.b64decode(b["cer"]) == cert.der
    a = b["attributes"]
    assert a["enabled"] is True and a["recoveryLevel"] == "Recoverable+Purgeable"
    assert (a["nbf"], a["exp"]) == (int(cert.not_before.timestamp()), int(cert.not_after.timestamp()))
    assert all(isinstance(a[k], int) for k in ("nbf", "exp", "created", "updated"))
    policy = b["policy"]
    assert policy["lifetime_actions"] == [{"trigger": {"lifetime_percentage": 80},
                                           "action": {"action_type": "AutoRenew"}}]
    assert policy["x509_props"]["subject"] == "CN=prom-remotewrite"
    assert policy["key_props"]["kty"] == "RSA" and policy["key_props"]["key_size"] == 2048
    assert policy["id"] == f"{base}/certificates/prom-rw-cert/policy"


def test_specific_version_has_no_policy_and_names_are_case_insensitive(lab: Lab) -> None:
    b = lab.get(f"/kv-prom/certificates/PROM-RW-CERT/{V_OLD.upper()}").json()
    assert b["id"].endswith(f"/certificates/prom-rw-cert/{V_OLD}")
    assert b["x5t"] == lab.certs.expired.x5t and "policy" not in b
    assert b["attributes"]["exp"] < time.time()
    missing = lab.get("/kv-prom/certificates/prom-rw-cert/ffffffffffffffffffffffffffffffff")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CertificateNotFound"


def test_policy_endpoint_and_email_contacts_when_not_auto_renewed(lab: Lab) -> None:
    p = lab.get("/kv-prom/certificates/manual-cert/policy").json()
    assert p["lifetime_actions"][0]["action"] == {"action_type": "EmailContacts"}
    assert p["issuer"] == {"name": "Self"}
    disabled = lab.get("/kv-prom/certificates/manual-cert").json()
    assert disabled["attributes"]["enabled"] is False


def test_lists(lab: Lab) -> None:
    versions = lab.get("/kv-prom/certificates/prom-rw-cert/versions").json()
    assert {v["id"].rsplit("/", 1)[1] for v in versions["value"]} == {V_OLD, V_NEW}
    assert versions["nextLink"] is None
    names = lab.get("/kv-prom/certificates").json()["value"]
    assert sorted(c["id"].rsplit("/", 1)[1] for c in names) == ["manual-cert", "prom-rw-cert"]


# ------------------------------------------------------------------------------------------ errors

def test_certificate_and_vault_not_found(lab: Lab) -> None:
    r = lab.get("/kv-prom/certificates/nope")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "CertificateNotFound"
    assert err["message"].startswith("A certificate with (name/id) nope was not found in this key vault.")
    vault = lab.get("/kv-other/certificates/prom-rw-cert")
    assert vault.status_code == 404 and vault.json()["error"]["code"] == "VaultNotFound"


def test_api_version(lab: Lab) -> None:
    r = lab.get("/kv-prom/certificates/prom-rw-cert", api=None)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter"
    bad = lab.get("/kv-prom/certificates/prom-rw-cert", api="9.9")
    assert bad.status_code == 400 and "(9.9) is not recognized" in bad.json()["error"]["message"]
    assert lab.get("/kv-prom/certificates/prom-rw-cert", api="7.5").status_code == 200


def test_missing_token_gets_the_key_vault_challenge(lab: Lab) -> None:
    r = lab.get("/kv-prom/certificates/prom-rw-cert", token=None)
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "Unauthorized",
                                  "message": "AKV10000: Request is missing a Bearer or PoP token."}}
    assert r.headers["WWW-Authenticate"] == f'Bearer authorization="{AUTHORITY}/{TENANT}", resource="{KV}"'


def test_wrong_audience_and_tenant(lab: Lab) -> None:
    aud, _ = lab.issuer.mint(audience="https://management.azure.com", client_id=DOCTOR_APP,
                             principal_id=DOCTOR_OID)
    r = lab.get("/kv-prom/certificates/prom-rw-cert", token=aud)
    assert r.status_code == 401
    assert r.json()["error"]["message"] == ("AKV10022: Invalid audience. Expected https://vault.azure.net, "
                                            "found: https://management.azure.com.")
    other, _ = lab.issuer.mint(audience=KV, client_id=DOCTOR_APP, principal_id=DOCTOR_OID,
                               tenant_id="00000000-dead-0000-0000-000000000000")
    t = lab.get("/kv-prom/certificates/prom-rw-cert", token=other)
    assert t.status_code == 401 and t.json()["error"]["message"].startswith("AKV10032: Invalid issuer.")
    expired, _ = lab.issuer.mint(audience=KV, client_id=DOCTOR_APP, principal_id=DOCTOR_OID,
                                 not_before=int(time.time()) - 7200, lifetime_s=3600)
    e = lab.get("/kv-prom/certificates/prom-rw-cert", token=expired)
    assert e.status_code == 401 and e.json()["error"]["code"] == "Unauthorized"


def test_access_policy_denial(lab: Lab) -> None:
    lab.state.doctor_denied.add("keyvault:certificates/get")
    r = lab.get("/kv-prom/certificates/prom-rw-cert")
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "Forbidden" and err["innererror"] == {"code": "ForbiddenByPolicy"}
    assert err["message"].startswith(
        f"The user, group or application 'appid={DOCTOR_APP};oid={DOCTOR_OID};iss=https://sts.windows.net/"
        f"{TENANT}/' does not have certificates get permission on key vault 'kv-prom;location=eastus'.")


def test_rbac_denial(lab: Lab) -> None:
    assert lab.get("/kv-prom/certificates/prom-rw-cert", base=lab.rbac_url).status_code == 200
    lab.state.doctor_denied.add("keyvault:certificates/get")
    r = lab.get("/kv-prom/certificates/prom-rw-cert", base=lab.rbac_url)
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "Forbidden" and err["innererror"] == {"code": "ForbiddenByRbac"}
    assert "Action: 'Microsoft.KeyVault/vaults/certificates/read'" in err["message"]
    assert (f"/subscriptions/{SUB}/resourcegroups/rg-secrets/providers/microsoft.keyvault/vaults/kv-prom/"
            "certificates/prom-rw-cert") in err["message"]


# ------------------------------------------------------------------------------------ writes and log

@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "PUT"])
def test_writes_are_refused_and_recorded(lab: Lab, method: str) -> None:
    log = request_log(lab.app)
    before = len(log)
    r = lab.get("/kv-prom/certificates/prom-rw-cert", method=method)
    assert r.status_code == 405
    assert [m for m, _ in log[before:]] == [method]


def test_request_log_only_reads(lab: Lab) -> None:
    log = request_log(lab.app)
    before = len(log)
    lab.get("/kv-prom/certificates/prom-rw-cert")
    lab.get("/kv-prom/certificates/prom-rw-cert/policy")
    assert log[before:] == [("GET", "/kv-prom/certificates/prom-rw-cert?api-version=7.4"),
                            ("GET", "/kv-prom/certificates/prom-rw-cert/policy?api-version=7.4")]


def test_token_from_azure_identity_against_the_entra_emulator(lab: Lab, lab_pki: LabPki,
                                                              clean_identity_env: pytest.MonkeyPatch) -> None:
    from azure.identity import ClientSecretCredential

    from promrw_doctor.lab.emulators import entra

    with LabServer() as server:
        ep = server.add("entra", entra.make_app(lab.state, lab.issuer), ssl_context=lab_pki.server_ssl)
        cred = ClientSecretCredential(TENANT, DOCTOR_APP, DOCTOR_SECRET, authority=ep.url,
                                      disable_instance_discovery=True, connection_verify=lab.ca)
        token = cred.get_token("https://vault.azure.net/.default").token
    r = lab.get("/kv-prom/certificates/prom-rw-cert", token=token)
    assert r.status_code == 200 and r.json()["x5t"] == lab.certs.valid.x5t
