"""Shared test harness: a small emulated Azure world, the lab's emulators, and an in-process forwarder.

Used by tests/forwarder and tests/identity (importable as ``forwarder.harness`` because
pytest puts ``tests/`` on ``sys.path`` for packages without a root ``__init__``).
Everything listens on 127.0.0.1 free ports via :class:`LabServer`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from promrw_doctor.forwarder.config import ForwarderConfig, config_from_env
from promrw_doctor.forwarder.server import Forwarder
from promrw_doctor.identity.credentials import TokenSource
from promrw_doctor.identity.manager import TokenManager
from promrw_doctor.lab.azure_state import (
    ROLE_IDS,
    Application,
    AzureState,
    DataCollectionEndpoint,
    DataCollectionRule,
    FederatedCredential,
    KeyCredential,
    ManagedIdentity,
    RoleAssignment,
)
from promrw_doctor.lab.emulators import entra, imds, ingestion
from promrw_doctor.lab.pki import CertificateAuthority, ClientCertificate, make_client_certificate
from promrw_doctor.lab.server import Endpoint, LabServer
from promrw_doctor.lab.tokens import OidcIssuer, TokenIssuer

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUB = "00000000-0000-0000-0000-0000000000aa"
AUDIENCE = "https://monitor.azure.com"
RG = f"/subscriptions/{SUB}/resourceGroups/MA_amw-fwd_eastus_managed"
PUBLISHER = "Monitoring Metrics Publisher"
WI_SUBJECT = "system:serviceaccount:monitoring:prometheus"

# Anything that would make azure-identity pick another credential source or authority.
IDENTITY_ENV = (
    "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_AUTHORITY_HOST", "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_TOKEN_CREDENTIALS", "AZURE_REGIONAL_AUTHORITY_NAME",
    "REQUESTS_CA_BUNDLE", "MSAL_FORCE_REGION", "INGESTION_URL", "LISTENING_PORT", "IDENTITY_TYPE",
    "INGESTION_AAD_AUDIENCE", "CLOUD", "CLUSTER", "AAD_HOST_ENDPOINT", "PROMRW_DOCTOR_CLOUD_CONFIG",
)


def gid() -> str:
    return str(uuid.uuid4())


@dataclass
class Certs:
    ca: CertificateAuthority
    ca_bundle: Path
    valid: ClientCertificate
    expired: ClientCertificate


def make_certs(directory: Path) -> Certs:
    ca = CertificateAuthority.create()
    now = datetime.now(UTC)
    return Certs(
        ca=ca, ca_bundle=ca.write_bundle(directory / "ca.pem"),
        valid=make_client_certificate("prom-remotewrite", now - timedelta(days=30), now + timedelta(days=300)),
        expired=make_client_certificate("prom-remotewrite-old", now - timedelta(days=400), now - timedelta(days=5)),
    )


def _kc(cert: ClientCertificate) -> KeyCredential:
    return KeyCredential(key_id=gid(), thumbprint=cert.thumbprint, start=cert.not_before, end=cert.not_after,
                         display_name=f"CN={cert.common_name}", cert_der=cert.der)


@dataclass
class World:
    state: AzureState
    issuer: TokenIssuer
    oidc: OidcIssuer
    app: Application  # certificate + secret
    uami: ManagedIdentity
    wi_app: Application
    dce: DataCollectionEndpoint
    dcr: DataCollectionRule
    secret: str = "lab-secret-value-1"

    def grant(self, principal_id: str, *, age: timedelta = timedelta(hours=4)) -> RoleAssignment:
        name = gid()
        ra = RoleAssignment(
            id=f"{self.dcr.id}/providers/Microsoft.Authorization/roleAssignments/{name}", name=name,
            scope=self.dcr.id, role_definition_id=self.state.role_definition_id(PUBLISHER),
            principal_id=principal_id, principal_type="ServicePrincipal", created_on=self.state.now() - age)
        assert ra.role_guid == ROLE_IDS[PUBLISHER]
        self.state.role_assignments.append(ra)
        return ra


def make_world(certs: Certs, *, grant: bool = True) -> World:
    dce = DataCollectionEndpoint(id=f"{RG}/providers/Microsoft.Insights/dataCollectionEndpoints/amw-fwd",
                                 name="amw-fwd", location="eastus", immutable_id="dce-" + uuid.uuid4().hex,
                                 metrics_ingestion_host="127.0.0.1")
    dcr = DataCollectionRule(id=f"{RG}/providers/Microsoft.Insights/dataCollectionRules/amw-fwd", name="amw-fwd",
                             location="eastus", immutable_id="dcr-" + uuid.uuid4().hex, dce_id=dce.id)
    app = Application(app_id=gid(), object_id=gid(), sp_object_id=gid(), display_name="prom-rw",
                      key_credentials=[_kc(certs.valid), _kc(certs.expired)], client_secrets=["lab-secret-value-1"])
    wi_app = Application(app_id=gid(), object_id=gid(), sp_object_id=gid(), display_name="prom-rw-wi")
    uami = ManagedIdentity(name="prom-rw-mi", resource_group="rg-aks", client_id=gid(), principal_id=gid())
    oidc = OidcIssuer("https://eastus.oic.prod-aks.azure.com/tenant/cluster/")
    state = AzureState(
        tenant_id=TENANT, subscription_id=SUB, identities=[uami], applications=[app, wi_app],
        federated_credentials=[FederatedCredential(client_id=wi_app.app_id, issuer=oidc.url, subject=WI_SUBJECT)],
        dces=[dce], dcrs=[dcr])
    world = World(state=state, issuer=TokenIssuer(TENANT), oidc=oidc, app=app, uami=uami, wi_app=wi_app,
                  dce=dce, dcr=dcr)
    if grant:
        for principal in (uami.principal_id, app.sp_object_id, wi_app.sp_object_id):
            world.grant(principal)
    return world


@dataclass
class Emulators:
    """The lab's emulators on one LabServer: IMDS (node personality), NMI, Entra (HTTPS), ingestion."""

    lab: LabServer
    world: World
    certs: Certs
    imds_app: web.Application
    imds: Endpoint
    entra_app: web.Application
    entra: Endpoint
    ingestion_app: web.Application
    ingestion: Endpoint
    extra: dict[str, Any] = field(default_factory=dict)

    def ingestion_url(self, endpoint: Endpoint | None = None) -> str:
        ep = endpoint or self.ingestion
        return (f"{ep.url}/dataCollectionRules/{self.world.dcr.immutable_id}/streams/Microsoft-PrometheusMetrics"
                "/api/v1/write?api-version=2023-04-24")

    @property
    def faults(self) -> ingestion.FaultQueue:
        return ingestion.faults(self.ingestion_app)

    @property
    def ingestion_log(self) -> ingestion.IngestionLog:
        return ingestion.request_log(self.ingestion_app)

    def imds_requests(self) -> list[imds.ImdsRequest]:
        return imds.request_log(self.imds_app)

    def env(self, identity_type: str = "userAssigned", **extra: str) -> dict[str, str]:
        """Sidecar env for ``identity_type`` against these emulators."""
        w = self.world
        env = {"INGESTION_URL": self.ingestion_url(), "LISTENING_PORT": "8081", "IDENTITY_TYPE": identity_type,
               "CLUSTER": "fwd-test"}
        if identity_type == "userAssigned":
            env["AZURE_CLIENT_ID"] = w.uami.client_id
        elif identity_type == "aadApplication":
            env.update(AZURE_CLIENT_ID=w.app.app_id, AZURE_TENANT_ID=TENANT, AAD_HOST_ENDPOINT=self.entra.url)
        elif identity_type == "workloadIdentity":
            env.update(AZURE_CLIENT_ID=w.wi_app.app_id, AZURE_TENANT_ID=TENANT, AZURE_AUTHORITY_HOST=self.entra.url)
        elif identity_type == "clientSecret":
            env.update(AZURE_CLIENT_ID=w.app.app_id, AZURE_TENANT_ID=TENANT, AAD_HOST_ENDPOINT=self.entra.url,
                       AZURE_CLIENT_SECRET=w.secret)
        env.update(extra)
        return env


def start_emulators(lab: LabServer, world: World, certs: Certs, *, receiver_url: str | None = None,
                    imds_lifetime_s: int = 86399) -> Emulators:
    server_ssl = certs.ca.issue_server().ssl_context()
    imds_app = imds.make_app(world.state, world.issuer, token_lifetime_s=imds_lifetime_s)
    entra_app = entra.make_app(world.state, world.issuer, workload_issuers={world.oidc.url: world.oidc})
    ing_app = ingestion.make_app(world.state, world.issuer, world.dce, receiver_url=receiver_url, audience=AUDIENCE)
    return Emulators(
        lab=lab, world=world, certs=certs,
        imds_app=imds_app, imds=lab.add("imds", imds_app),
        entra_app=entra_app, entra=lab.add("entra", entra_app, ssl_context=server_ssl),
        ingestion_app=ing_app, ingestion=lab.add("ingestion", ing_app),
    )


def forwarder_config(env: dict[str, str], **options: Any) -> ForwarderConfig:
    options.setdefault("listen_port", 0)
    options.setdefault("imds_retry_total", 0)
    return config_from_env(env, **options)


def start_forwarder(lab: LabServer, config: ForwarderConfig, tokens: TokenManager | None = None,
                    *, acquire_token: bool = True) -> Forwarder:
    """Run a Forwarder on the LabServer's event loop (token fetches go to worker threads)."""

    async def _start() -> Forwarder:
        fwd = Forwarder(config, tokens or TokenManager(TokenSource(config.identity)))
        await fwd.start(acquire_token=acquire_token)
        return fwd

    fwd: Forwarder = lab.call(_start)
    return fwd


def stop_forwarder(lab: LabServer, fwd: Forwarder) -> None:
    lab.call(fwd.stop, timeout=60)


def forwarder_url(fwd: Forwarder, path: str = "/api/v1/write") -> str:
    return f"http://127.0.0.1:{fwd.port}{path}"


def run_in(lab: LabServer, fn: Callable[[], Any]) -> Any:
    """Run a plain callable on the server loop (to read state owned by the loop thread)."""

    async def _c() -> Any:
        return fn()

    return lab.call(_c)


async def _sleep(seconds: float) -> None:  # pragma: no cover - helper for handlers
    await asyncio.sleep(seconds)
