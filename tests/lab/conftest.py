"""Fixtures for the lab emulator tests: a per-session CA, a running LabServer, a small Azure world.

Key generation is the slow part (RSA 2048), so the CA and the client certificates are
made once per session; the Azure state, the token issuer and the servers are fresh per
test so no test can leak behaviour into another.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promrw_doctor.lab.azure_state import (
    ROLE_IDS,
    Application,
    AzureState,
    DataCollectionEndpoint,
    DataCollectionRule,
    FederatedCredential,
    KeyCredential,
    ManagedCluster,
    ManagedIdentity,
    RoleAssignment,
    Workspace,
)
from promrw_doctor.lab.pki import CertificateAuthority, ClientCertificate, make_client_certificate
from promrw_doctor.lab.server import LabServer
from promrw_doctor.lab.tokens import OidcIssuer, TokenIssuer

TENANT = "72f988bf-0000-0000-0000-000000000001"
SUB = "00000000-0000-0000-0000-0000000000aa"
INGESTION_AUDIENCE = "https://monitor.azure.com"
QUERY_AUDIENCE = "https://prometheus.monitor.azure.com"
MANAGED_RG = "MA_amw-lab_eastus_managed"

# Anything that would make azure-identity pick another credential source or authority.
IDENTITY_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_REGIONAL_AUTHORITY_NAME",
    "REQUESTS_CA_BUNDLE",
    "MSAL_FORCE_REGION",
)


@dataclass
class LabPki:
    ca: CertificateAuthority
    ca_bundle: Path
    server_ssl: ssl.SSLContext


@dataclass
class ClientCerts:
    valid: ClientCertificate
    expired: ClientCertificate
    unregistered: ClientCertificate


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    ca = CertificateAuthority.create()
    bundle = ca.write_bundle(tmp_path_factory.mktemp("pki") / "ca.pem")
    return LabPki(ca=ca, ca_bundle=bundle, server_ssl=ca.issue_server().ssl_context())


@pytest.fixture(scope="session")
def client_certs() -> ClientCerts:
    now = datetime.now(UTC)
    return ClientCerts(
        valid=make_client_certificate(
            "prom-remotewrite", now - timedelta(days=30), now + timedelta(days=335)
        ),
        expired=make_client_certificate(
            "prom-remotewrite-old", now - timedelta(days=400), now - timedelta(days=35)
        ),
        unregistered=make_client_certificate(
            "someone-else", now - timedelta(days=1), now + timedelta(days=30)
        ),
    )


@pytest.fixture
def lab_server() -> Iterator[LabServer]:
    server = LabServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clean_identity_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _kc(cert: ClientCertificate) -> KeyCredential:
    return KeyCredential(
        key_id=str(uuid.uuid4()),
        thumbprint=cert.thumbprint,
        start=cert.not_before,
        end=cert.not_after,
        display_name=f"CN={cert.common_name}",
        cert_der=cert.der,
    )


def _gid() -> str:
    return str(uuid.uuid4())


@dataclass
class World:
    """A small Azure world: one app (cert + secret), one UAMI, a workload identity, one DCE/DCR/workspace."""

    state: AzureState
    issuer: TokenIssuer
    oidc: OidcIssuer
    app: Application
    uami: ManagedIdentity
    wi_app: Application
    dce: DataCollectionEndpoint
    dcr: DataCollectionRule
    other_dce: DataCollectionEndpoint
    other_dcr: DataCollectionRule
    workspace: Workspace
    cluster: ManagedCluster
    secret: str = "lab-secret-value-1"
    rg_id: str = field(default="")

    def grant(
        self, principal_id: str, role: str, scope: str, *, age: timedelta = timedelta(hours=4)
    ) -> RoleAssignment:
        name = _gid()
        ra = RoleAssignment(
            id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
            name=name,
            scope=scope,
            role_definition_id=self.state.role_definition_id(role),
            principal_id=principal_id,
            principal_type="ServicePrincipal",
            created_on=self.state.now() - age,
        )
        assert ra.role_guid == ROLE_IDS[role]
        self.state.role_assignments.append(ra)
        return ra

    def token(
        self,
        principal_id: str,
        *,
        audience: str = INGESTION_AUDIENCE,
        client_id: str | None = None,
        **kw: object,
    ) -> str:
        tok, _ = self.issuer.mint(
            audience=audience, client_id=client_id or _gid(), principal_id=principal_id, **kw
        )  # type: ignore[arg-type]
        return tok


@pytest.fixture
def world(client_certs: ClientCerts) -> World:
    rg_id = f"/subscriptions/{SUB}/resourceGroups/{MANAGED_RG}"
    dce = DataCollectionEndpoint(
        id=f"{rg_id}/providers/Microsoft.Insights/dataCollectionEndpoints/amw-lab",
        name="amw-lab",
        location="eastus",
        immutable_id="dce-" + uuid.uuid4().hex,
        metrics_ingestion_host="127.0.0.1",
    )
    other_dce = DataCollectionEndpoint(
        id=f"{rg_id}/providers/Microsoft.Insights/dataCollectionEndpoints/other",
        name="other",
        location="eastus",
        immutable_id="dce-" + uuid.uuid4().hex,
        metrics_ingestion_host="127.0.0.1",
    )
    ws_id = f"/subscriptions/{SUB}/resourceGroups/rg-monitoring/providers/Microsoft.Monitor/accounts/amw-lab"
    dcr = DataCollectionRule(
        id=f"{rg_id}/providers/Microsoft.Insights/dataCollectionRules/amw-lab",
        name="amw-lab",
        location="eastus",
        immutable_id="dcr-" + uuid.uuid4().hex,
        dce_id=dce.id,
        workspace_id=ws_id,
    )
    other_dcr = DataCollectionRule(
        id=f"{rg_id}/providers/Microsoft.Insights/dataCollectionRules/other",
        name="other",
        location="eastus",
        immutable_id="dcr-" + uuid.uuid4().hex,
        dce_id=other_dce.id,
        workspace_id=ws_id,
    )
    workspace = Workspace(
        id=ws_id,
        name="amw-lab",
        location="eastus",
        default_dcr_id=dcr.id,
        default_dce_id=dce.id,
        query_endpoint="https://127.0.0.1",
    )
    app = Application(
        app_id=_gid(),
        object_id=_gid(),
        sp_object_id=_gid(),
        display_name="prom-rw",
        key_credentials=[_kc(client_certs.valid), _kc(client_certs.expired)],
        client_secrets=["lab-secret-value-1"],
    )
    wi_app = Application(app_id=_gid(), object_id=_gid(), sp_object_id=_gid(), display_name="prom-rw-wi")
    uami = ManagedIdentity(name="prom-rw-mi", resource_group="rg-aks", client_id=_gid(), principal_id=_gid())
    kubelet = ManagedIdentity(
        name="aks-lab-agentpool",
        resource_group="MC_rg-aks_aks-lab_eastus",
        client_id=_gid(),
        principal_id=_gid(),
    )
    oidc = OidcIssuer("https://eastus.oic.prod-aks.azure.com/tenant/cluster/")
    cluster = ManagedCluster(
        id=f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-lab",
        name="aks-lab",
        location="eastus",
        node_resource_group="MC_rg-aks_aks-lab_eastus",
        kubelet_identity=kubelet,
        oidc_issuer=oidc.url,
    )
    state = AzureState(
        tenant_id=TENANT,
        subscription_id=SUB,
        identities=[uami],
        applications=[app, wi_app],
        federated_credentials=[
            FederatedCredential(
                client_id=wi_app.app_id,
                issuer=oidc.url,
                subject="system:serviceaccount:monitoring:prometheus",
            )
        ],
        dces=[dce, other_dce],
        dcrs=[dcr, other_dcr],
        workspaces=[workspace],
        clusters=[cluster],
    )
    return World(
        state=state,
        issuer=TokenIssuer(TENANT),
        oidc=oidc,
        app=app,
        uami=uami,
        wi_app=wi_app,
        dce=dce,
        dcr=dcr,
        other_dce=other_dce,
        other_dcr=other_dcr,
        workspace=workspace,
        cluster=cluster,
        rg_id=rg_id,
    )
