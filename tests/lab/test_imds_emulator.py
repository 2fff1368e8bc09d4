"""IMDS / NMI emulator against azure-identity's ManagedIdentityCredential and raw HTTP."""

from __future__ import annotations

import time

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential

from promrw_doctor.lab.emulators import imds
from promrw_doctor.lab.server import Endpoint, LabServer

from .conftest import INGESTION_AUDIENCE, World

POD = ("monitoring", "prometheus-0")
TOKEN_URL = "/metadata/identity/oauth2/token"


def _serve(
    lab_server: LabServer, world: World, monkeypatch: pytest.MonkeyPatch, **kw: object
) -> tuple[Endpoint, object]:
    app = imds.make_app(world.state, world.issuer, **kw)  # type: ignore[arg-type]
    ep = lab_server.add(f"imds-{len(lab_server.endpoints)}", app)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", ep.url)
    return ep, app


def test_pod_identity_token_via_azure_identity(
    lab_server: LabServer, world: World, clean_identity_env: pytest.MonkeyPatch
) -> None:
    _, app = _serve(lab_server, world, clean_identity_env, pod=POD)
    token = ManagedIdentityCredential(client_id=world.uami.client_id).get_token(
        "https://monitor.azure.com/.default"
    )
    claims = world.issuer.verify(token.token, audiences=[INGESTION_AUDIENCE])
    assert claims["oid"] == world.uami.principal_id and claims["appid"] == world.uami.client_id
    assert token.expires_on > time.time() + 3600
    log = imds.request_log(app)  # type: ignore[arg-type]
    assert [(r.client_id, r.resource, r.status) for r in log] == [
        (world.uami.client_id, INGESTION_AUDIENCE, 200)
    ]


def test_raw_success_shape_and_missing_header(
    lab_server: LabServer, world: World, clean_identity_env: pytest.MonkeyPatch
) -> None:
    ep, _ = _serve(lab_server, world, clean_identity_env, pod=POD)
    params = {"api-version": "2018-02-01", "resource": INGESTION_AUDIENCE, "client_id": world.uami.client_id}
    r = requests.get(ep.url + TOKEN_URL, params=params, timeout=5)
    assert r.status_code == 400
    assert r.json() == {
        "error": "invalid_request",
        "error_description": "Required metadata header not specified",
    }
    r = requests.get(ep.url + TOKEN_URL, params=params, headers={"Metadata": "true"}, timeout=5)
    body = r.json()
    assert set(body) == {
        "access_token",
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
    }
    assert body["token_type"] == "Bearer" and body["resource"] == INGESTION_AUDIENCE
    assert all(isinstance(body[k], str) for k in ("expires_in", "expires_on", "ext_expires_in", "not_before"))
    r = requests.get(
        ep.url + TOKEN_URL, params={"api-version": "2018-02-01"}, headers={"Metadata": "true"}, timeout=5
    )
    assert (r.status_code, r.text) == (400, "parameter resource cannot be empty\n")


def test_pod_not_assigned(
    lab_server: LabServer, world: World, clean_identity_env: pytest.MonkeyPatch
) -> None:
    world.state.nmi_assigned_pods = {("monitoring", "some-other-pod")}
    ep, app = _serve(lab_server, world, clean_identity_env, pod=POD)
    started = time.monotonic()
    with pytest.raises((CredentialUnavailableError, ClientAuthenticationError)):
        ManagedIdentityCredential(client_id=world.uami.client_id, retry_total=0).get_token(
            "https://monitor.azure.com/.default"
        )
    assert time.monotonic() - started < 5
    assert [r.status for r in imds.request_log(app)] == [404]  # type: ignore[arg-type]
    # azure-identity drops NMI's text/plain body; the doctor's raw GET sees it.
    r = requests.get(
        ep.url + TOKEN_URL,
        headers={"Metadata": "true"},
        timeout=5,
        params={
            "api-version": "2018-02-01",
            "resource": INGESTION_AUDIENCE,
            "client_id": world.uami.client_id,
        },
    )
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/plain")
    assert r.text.startswith(
        "getting assigned identities for pod monitoring/prometheus-0 in CREATED state failed"
    )


def test_unknown_client_id_is_redacted_404(
    lab_server: LabServer, world: World, clean_identity_env: pytest.MonkeyPatch
) -> None:
    ep, _ = _serve(lab_server, world, clean_identity_env, pod=POD)
    unknown = "7eb6c3d2-0000-4000-8000-00000000a6a9"
    r = requests.get(
        ep.url + TOKEN_URL,
        headers={"Metadata": "true"},
        timeout=5,
        params={"api-version": "2018-02-01", "resource": INGESTION_AUDIENCE, "client_id": unknown},
    )
    assert r.status_code == 404
    assert r.text == "no azure identity found for request clientID 7eb6##### REDACTED #####a6a9\n"
    assert unknown not in r.text
    assert imds.redact_client_id(unknown) == "7eb6##### REDACTED #####a6a9"


def test_nmi_not_running_drops_the_connection(
    lab_server: LabServer, world: World, clean_identity_env: pytest.MonkeyPatch
) -> None:
    world.state.nmi_running = False
    ep, app = _serve(lab_server, world, clean_identity_env, pod=POD)
    with pytest.raises(requests.ConnectionError):
        requests.get(
            ep.url + TOKEN_URL,
            headers={"Metadata": "true"},
            timeout=5,
            params={"api-version": "2018-02-01", "resource": INGESTION_AUDIENCE},
        )
    assert [r.outcome for r in imds.request_log(app)] == ["aborted"]  # type: ignore[arg-type]


def test_node_imds_for_plain_managed_identity(
    lab_server: LabServer, world: World, clean_identity_env: pytest.MonkeyPatch
) -> None:
    ep, _ = _serve(lab_server, world, clean_identity_env, pod=None)
    kubelet = world.cluster.kubelet_identity
    token = ManagedIdentityCredential(client_id=kubelet.client_id).get_token(
        "https://monitor.azure.com/.default"
    )
    assert world.issuer.verify(token.token, audiences=[INGESTION_AUDIENCE])["oid"] == kubelet.principal_id
    plain = {"api-version": "2018-02-01", "resource": INGESTION_AUDIENCE}
    r = requests.get(ep.url + TOKEN_URL, headers={"Metadata": "true"}, timeout=5, params=plain)
    assert r.status_code == 400 and "Multiple user assigned identities exist" in r.json()["error_description"]
    world.state.node_identities = set()  # the UAMI is not attached to the VMSS
    r = requests.get(ep.url + TOKEN_URL, headers={"Metadata": "true"}, timeout=5, params=plain)
    assert r.json()["client_id"] == kubelet.client_id  # the only identity left on the node
    r = requests.get(
        ep.url + TOKEN_URL,
        headers={"Metadata": "true"},
        timeout=5,
        params={
            "api-version": "2018-02-01",
            "resource": INGESTION_AUDIENCE,
            "client_id": world.uami.client_id,
        },
    )
    assert r.status_code == 400 and r.json() == {
        "error": "invalid_request",
        "error_description": "Identity not found",
    }
