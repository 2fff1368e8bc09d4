"""The Entra emulator against the real azure-identity credentials (and raw requests for the wire shape)."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential, WorkloadIdentityCredential

from promrw_doctor.lab.emulators import entra
from promrw_doctor.lab.server import Endpoint, LabServer

from .conftest import INGESTION_AUDIENCE, TENANT, ClientCerts, LabPki, World

SCOPE = "https://monitor.azure.com//.default"  # Prometheus' double-slash spelling


@pytest.fixture
def entra_ep(
    lab_server: LabServer, lab_pki: LabPki, world: World, clean_identity_env: pytest.MonkeyPatch
) -> tuple[Endpoint, object]:
    app = entra.make_app(world.state, world.issuer, workload_issuers={world.oidc.url: world.oidc})
    return lab_server.add("entra", app, ssl_context=lab_pki.server_ssl), app


def _cert_cred(
    ep: Endpoint, lab_pki: LabPki, client_id: str, path: Path, **kw: object
) -> CertificateCredential:
    return CertificateCredential(
        TENANT,
        client_id,
        certificate_path=str(path),
        authority=ep.url,
        disable_instance_discovery=True,
        connection_verify=str(lab_pki.ca_bundle),
        **kw,
    )  # type: ignore[arg-type]


def _outcomes(app: object) -> list[str]:
    return [r.outcome for r in entra.request_log(app) if r.grant not in ("discovery", "jwks")]  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ certificate
def test_certificate_pem_success(
    entra_ep,
    lab_pki: LabPki,
    world: World,
    client_certs: ClientCerts,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ep, app = entra_ep
    pem = tmp_path / "cert.pem"
    pem.write_bytes(client_certs.valid.pem_bundle())
    caplog.set_level(logging.DEBUG)
    token = _cert_cred(ep, lab_pki, world.app.app_id, pem).get_token(SCOPE)
    claims = world.issuer.verify(token.token, audiences=[INGESTION_AUDIENCE])
    assert claims["oid"] == world.app.sp_object_id and claims["appid"] == world.app.app_id
    assert claims["aud"] == INGESTION_AUDIENCE
    log = entra.request_log(app)
    assert [r.grant for r in log] == ["discovery", "client_certificate"]
    assert log[-1].client_id == world.app.app_id and log[-1].outcome == "ok"
    assert log[-1].scope == INGESTION_AUDIENCE
    assert token.token not in caplog.text


def test_certificate_pfx_with_password(
    entra_ep, lab_pki: LabPki, world: World, client_certs: ClientCerts, tmp_path: Path
) -> None:
    ep, _ = entra_ep
    pfx = tmp_path / "cert.pfx"
    pfx.write_bytes(client_certs.valid.pfx(b"pfx-pass"))
    token = _cert_cred(ep, lab_pki, world.app.app_id, pfx, password=b"pfx-pass").get_token(SCOPE)
    assert world.issuer.verify(token.token, audiences=[INGESTION_AUDIENCE])["oid"] == world.app.sp_object_id


def test_unregistered_certificate_is_700027(
    entra_ep, lab_pki: LabPki, world: World, client_certs: ClientCerts, tmp_path: Path
) -> None:
    ep, app = entra_ep
    pem = tmp_path / "other.pem"
    pem.write_bytes(client_certs.unregistered.pem_bundle())
    with pytest.raises(ClientAuthenticationError) as info:
        _cert_cred(ep, lab_pki, world.app.app_id, pem).get_token(SCOPE)
    text = str(info.value)
    assert "AADSTS700027" in text and "The key was not found" in text
    assert client_certs.unregistered.thumbprint in text
    assert _outcomes(app) == ["AADSTS700027"]


def test_expired_registered_certificate(
    entra_ep, lab_pki: LabPki, world: World, client_certs: ClientCerts, tmp_path: Path
) -> None:
    ep, _ = entra_ep
    pem = tmp_path / "old.pem"
    pem.write_bytes(client_certs.expired.pem_bundle())
    with pytest.raises(ClientAuthenticationError) as info:
        _cert_cred(ep, lab_pki, world.app.app_id, pem).get_token(SCOPE)
    assert "AADSTS700027" in str(info.value) and "The key used is expired" in str(info.value)


def test_unknown_client_is_700016(
    entra_ep, lab_pki: LabPki, world: World, client_certs: ClientCerts, tmp_path: Path
) -> None:
    ep, _ = entra_ep
    pem = tmp_path / "cert.pem"
    pem.write_bytes(client_certs.valid.pem_bundle())
    unknown = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(ClientAuthenticationError) as info:
        _cert_cred(ep, lab_pki, unknown, pem).get_token(SCOPE)
    assert "AADSTS700016" in str(info.value) and f"'{unknown}' was not found in the directory" in str(
        info.value
    )


# -------------------------------------------------------------------------------- secrets
def test_client_secret_success_and_wrong_secret(entra_ep, lab_pki: LabPki, world: World) -> None:
    ep, app = entra_ep
    kw = {
        "authority": ep.url,
        "disable_instance_discovery": True,
        "connection_verify": str(lab_pki.ca_bundle),
    }
    token = ClientSecretCredential(TENANT, world.app.app_id, world.secret, **kw).get_token(SCOPE)
    assert world.issuer.verify(token.token, audiences=[INGESTION_AUDIENCE])["oid"] == world.app.sp_object_id
    with pytest.raises(ClientAuthenticationError) as info:
        ClientSecretCredential(TENANT, world.app.app_id, "not-the-secret", **kw).get_token(SCOPE)
    assert "AADSTS7000215" in str(info.value)
    assert "not-the-secret" not in str(info.value)
    assert _outcomes(app) == ["ok", "AADSTS7000215"]


def test_expired_secret_is_7000222(entra_ep, lab_pki: LabPki, world: World) -> None:
    ep, _ = entra_ep
    world.app.client_secret_ends[world.secret] = world.state.now() - timedelta(days=1)
    with pytest.raises(ClientAuthenticationError) as info:
        ClientSecretCredential(
            TENANT,
            world.app.app_id,
            world.secret,
            authority=ep.url,
            disable_instance_discovery=True,
            connection_verify=str(lab_pki.ca_bundle),
        ).get_token(SCOPE)
    assert "AADSTS7000222" in str(info.value)


def test_http_basic_client_auth_like_go_oauth2(entra_ep, lab_pki: LabPki, world: World) -> None:
    ep, _ = entra_ep
    basic = base64.b64encode(f"{quote(world.app.app_id)}:{quote(world.secret)}".encode()).decode()
    r = requests.post(
        f"{ep.url}/{TENANT}/oauth2/v2.0/token",
        verify=str(lab_pki.ca_bundle),
        timeout=5,
        headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "client_credentials", "scope": "https://monitor.azure.com/.default"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
    assert (
        world.issuer.verify(body["access_token"], audiences=[INGESTION_AUDIENCE])["appid"] == world.app.app_id
    )


# ----------------------------------------------------------------------- workload identity
def test_workload_identity_success_with_trailing_newline(
    entra_ep, lab_pki: LabPki, world: World, tmp_path: Path
) -> None:
    ep, app = entra_ep
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(world.oidc.service_account_token("monitoring", "prometheus") + "\n")
    cred = WorkloadIdentityCredential(
        tenant_id=TENANT,
        client_id=world.wi_app.app_id,
        token_file_path=str(token_file),
        authority=ep.url,
        connection_verify=str(lab_pki.ca_bundle),
    )
    token = cred.get_token(SCOPE)
    assert (
        world.issuer.verify(token.token, audiences=[INGESTION_AUDIENCE])["oid"] == world.wi_app.sp_object_id
    )
    assert [(r.grant, r.outcome) for r in entra.request_log(app)] == [("federated", "ok")]


def test_workload_identity_without_matching_federated_credential(
    entra_ep, lab_pki: LabPki, world: World, tmp_path: Path
) -> None:
    ep, _ = entra_ep
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(
        world.oidc.service_account_token("monitoring", "prometheus-kube-prometheus-prometheus")
    )
    cred = WorkloadIdentityCredential(
        tenant_id=TENANT,
        client_id=world.wi_app.app_id,
        token_file_path=str(token_file),
        authority=ep.url,
        connection_verify=str(lab_pki.ca_bundle),
    )
    with pytest.raises(ClientAuthenticationError) as info:
        cred.get_token(SCOPE)
    text = str(info.value)
    assert "AADSTS70021" in text
    assert (
        "Assertion Subject: 'system:serviceaccount:monitoring:prometheus-kube-prometheus-prometheus'" in text
    )
    assert f"Assertion Issuer: '{world.oidc.url}'" in text


def test_workload_identity_token_signed_by_another_key(entra_ep, lab_pki: LabPki, world: World) -> None:
    from promrw_doctor.lab.tokens import OidcIssuer

    ep, _ = entra_ep
    forged = OidcIssuer(world.oidc.url).service_account_token("monitoring", "prometheus")
    r = requests.post(
        f"{ep.url}/{TENANT}/oauth2/v2.0/token",
        verify=str(lab_pki.ca_bundle),
        timeout=5,
        data={
            "grant_type": "client_credentials",
            "client_id": world.wi_app.app_id,
            "scope": SCOPE,
            "client_assertion_type": entra.JWT_BEARER,
            "client_assertion": forged,
        },
    )
    assert r.status_code == 401 and r.json()["error_codes"] == [700027]


# ------------------------------------------------------------------------- wire shape
def test_discovery_document_and_keys(entra_ep, lab_pki: LabPki, world: World) -> None:
    ep, _ = entra_ep
    doc = requests.get(
        f"{ep.url}/{TENANT}/v2.0/.well-known/openid-configuration", verify=str(lab_pki.ca_bundle), timeout=5
    ).json()
    assert doc["token_endpoint"] == f"{ep.url}/{TENANT}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"].startswith(f"{ep.url}/{TENANT}/")
    assert doc["issuer"] == f"{ep.url}/{TENANT}/v2.0"
    keys = requests.get(doc["jwks_uri"], verify=str(lab_pki.ca_bundle), timeout=5).json()
    assert keys == world.issuer.jwks()


def test_unknown_tenant_error_shape(entra_ep, lab_pki: LabPki) -> None:
    ep, _ = entra_ep
    r = requests.get(
        f"{ep.url}/not-a-tenant/v2.0/.well-known/openid-configuration",
        verify=str(lab_pki.ca_bundle),
        timeout=5,
        headers={"client-request-id": "corr-1"},
    )
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["error"] == "invalid_tenant" and body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant 'not-a-tenant' not found.")
    assert (
        f"\r\nTrace ID: {body['trace_id']}\r\nCorrelation ID: corr-1\r\nTimestamp: "
        in body["error_description"]
    )
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=90002"
    r = requests.post(
        f"{ep.url}/not-a-tenant/oauth2/v2.0/token",
        verify=str(lab_pki.ca_bundle),
        timeout=5,
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y", "scope": SCOPE},
    )
    assert (r.status_code, r.json()["error"], r.json()["error_codes"]) == (400, "invalid_request", [90002])


@pytest.mark.parametrize(
    "data,status,error,code",
    [
        ({"client_id": "x", "scope": SCOPE}, 400, "invalid_request", 900144),  # no grant_type
        (
            {"grant_type": "client_credentials", "scope": SCOPE},
            400,
            "invalid_request",
            900144,
        ),  # no client_id
        (
            {"grant_type": "client_credentials", "client_id": "APP", "scope": "https://monitor.azure.com"},
            400,
            "invalid_scope",
            1002012,
        ),
        (
            {"grant_type": "client_credentials", "client_id": "APP", "scope": SCOPE},
            401,
            "invalid_client",
            7000218,
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "APP",
                "scope": SCOPE,
                "client_assertion_type": entra.JWT_BEARER,
                "client_assertion": "garbage",
            },
            400,
            "invalid_request",
            50027,
        ),
    ],
)
def test_request_validation_errors(
    entra_ep, lab_pki: LabPki, world: World, data: dict[str, str], status: int, error: str, code: int
) -> None:
    ep, _ = entra_ep
    form = {k: (world.app.app_id if v == "APP" else v) for k, v in data.items()}
    r = requests.post(
        f"{ep.url}/{TENANT}/oauth2/v2.0/token", data=form, verify=str(lab_pki.ca_bundle), timeout=5
    )
    assert (r.status_code, r.json()["error"], r.json()["error_codes"]) == (status, error, [code]), r.text


def test_known_resources_rejects_wrong_cloud_audience(
    lab_server: LabServer, lab_pki: LabPki, world: World
) -> None:
    app = entra.make_app(world.state, world.issuer, known_resources=[INGESTION_AUDIENCE])
    ep = lab_server.add("entra-strict", app, ssl_context=lab_pki.server_ssl)
    r = requests.post(
        f"{ep.url}/{TENANT}/oauth2/v2.0/token",
        verify=str(lab_pki.ca_bundle),
        timeout=5,
        data={
            "grant_type": "client_credentials",
            "client_id": world.app.app_id,
            "client_secret": world.secret,
            "scope": "https://monitor.azure.us/.default",
        },
    )
    assert r.status_code == 400 and r.json()["error_codes"] == [500011]


def test_handler_bug_becomes_json_500(
    entra_ep, lab_pki: LabPki, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep, _ = entra_ep

    def boom(_: str) -> None:
        raise RuntimeError("lab bug")

    monkeypatch.setattr(world.state, "application", boom)
    r = requests.post(
        f"{ep.url}/{TENANT}/oauth2/v2.0/token",
        verify=str(lab_pki.ca_bundle),
        timeout=5,
        data={
            "grant_type": "client_credentials",
            "client_id": world.app.app_id,
            "client_secret": world.secret,
            "scope": SCOPE,
        },
    )
    assert r.status_code == 500 and r.json()["error"] == "server_error"


def test_token_endpoint_fault_queue(entra_ep, lab_pki: LabPki, world: World) -> None:
    ep, app = entra_ep
    q = entra.faults(app)  # type: ignore[arg-type]
    q.push(503, headers={"Retry-After": "1"}, body={"error": "temporarily_unavailable"})
    q.push(reset=True)
    url = f"{ep.url}/{TENANT}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": world.app.app_id,
        "client_secret": world.secret,
        "scope": SCOPE,
    }
    r = requests.post(url, data=form, verify=str(lab_pki.ca_bundle), timeout=5)
    assert (r.status_code, r.headers["Retry-After"], r.json()) == (503, "1", {"error": "temporarily_unavailable"})
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data=form, verify=str(lab_pki.ca_bundle), timeout=5)
    assert requests.post(url, data=form, verify=str(lab_pki.ca_bundle), timeout=5).status_code == 200
    assert [r.outcome for r in entra.request_log(app)] == ["forced", "reset", "ok"]  # type: ignore[arg-type]


def test_v1_token_endpoint_with_resource(entra_ep, lab_pki: LabPki, world: World) -> None:
    ep, _ = entra_ep
    r = requests.post(
        f"{ep.url}/{TENANT}/oauth2/token",
        verify=str(lab_pki.ca_bundle),
        timeout=5,
        data={
            "grant_type": "client_credentials",
            "client_id": world.app.app_id,
            "client_secret": world.secret,
            "resource": "https://monitor.azure.com/",
        },
    )
    body = r.json()
    assert r.status_code == 200 and body["resource"] == INGESTION_AUDIENCE
    assert body["expires_on"].isdigit() and body["expires_in"].isdigit()
    assert world.issuer.verify(body["access_token"], audiences=[INGESTION_AUDIENCE])["oid"] == world.app.sp_object_id
